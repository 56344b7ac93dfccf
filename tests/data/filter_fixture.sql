-- Traces for the filter golden test (tests/golden/filter.t): one per case
-- that r1.rules must tell apart.
INSERT INTO profiles(id, name, created_at) VALUES (1, 'default', 0);
INSERT INTO prompts(id, hash, norm_version, text, reference, domain, created_at) VALUES
 (1, 'p1', 1, 'James runs 3 sprints 3 times a week, 60 meters each. How many meters a week?', '540', 'math', 0),
 (2, 'p2', 1, 'Peter bought 20 popsicles at $0.25 and 4 bars at $0.50. Total?', '7', 'math', 0),
 (3, 'p3', 1, 'How many articles in total?', '12', 'math', 0),
 (4, 'p4', 1, 'Write a function that adds two numbers.', NULL, 'code', 0),
 (5, 'p5', 1, 'What is 11 squared?', '121', 'math', 0);
INSERT INTO prompt_sources(prompt_id, source, created_at) VALUES
 (1, 'gsm8k', 0), (2, 'gsm8k', 0), (3, 'gsm8k', 0), (4, 'humaneval', 0), (5, 'sim', 0);
INSERT INTO jobs(id, prompt_id, profile_id, sample_index, state, created_at, updated_at) VALUES
 (1, 1, 1, 0, 'done', 0, 0), (2, 2, 1, 0, 'done', 0, 0), (3, 3, 1, 0, 'done', 0, 0),
 (4, 4, 1, 0, 'done', 0, 0), (5, 5, 1, 0, 'done', 0, 0), (6, 1, 1, 1, 'done', 0, 0);
INSERT INTO traces(id, job_id, reasoning, answer, placement, finish_reason, created_at) VALUES
 (1, 1, 'Each session is 3 sprints of 60 m, so 180 m; three sessions make 540 m.',
  'He runs \boxed{540} meters a week.', 'close_tag_only', 'stop', 0),
 (2, 2, NULL, 'Error after 6 attempts: Error code: 500 - {''error'': {''message'': ''Internal Server Error''}}',
  'none', 'stop', 0),
 (3, 3, 'We just add both sites. So the分类 does not matter: 5 + 7 = 12.', 'The total is \boxed{12}.',
  'close_tag_only', 'stop', 0),
 (4, 4, 'A function that returns a + b.', 'def add(a, b): return a + b', 'close_tag_only', 'stop', 0),
 (5, 5, '11 times 11 is 121. Let me check that again to be completely sure about it. ' ||
  'It is the same. So, 121. It is the same. So, 121. It is the same. So, 121. It is the same. So, 121. ' ||
  'It is the same. So, 121. It is the same. So, 121. It is the same. So, 121. It is the same. So, 121. ' ||
  'It is the same. So, 121. It is the same. So, 121. It is the same. So, 121. It is the same. So, 121. ' ||
  'It is the same. So, 121. It is the same. So, 121. It is the same. So, 121. It is the same. So, 121. ' ||
  'It is the same. So, 121. It is the same. So, 121. It is the same. So, 121. It is the same. So, 121. ' ||
  'It is the same. So, 121. It is the same. So, 121. It is the same. So, 121. It is the same. So, 121. ' ||
  'It is the same. So, 121. It is the same. So, 121. It is the same. So, 121. It is the same. So, 121.',
  '\boxed{121}', 'close_tag_only', 'stop', 0),
 (6, 6, '3 times 3 is 9 sprints', 'The answer is \boxed{541}', 'close_tag_only', 'length', 0);
