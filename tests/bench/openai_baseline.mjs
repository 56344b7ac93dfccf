// openai_baseline.mjs - the baseline of bench_work: the official OpenAI Node
// SDK sending the same chat-completion requests to the same simulator with
// the same concurrency, discarding the answers.  Prints one JSON line:
// {"requests": N, "ok": N, "failed": N, "wall_s": S, "cpu_s": S}.
// Usage: node openai_baseline.mjs BASE_URL MODEL PROMPTS_FILE CONCURRENCY MAX_TOKENS
import OpenAI from 'openai';
import { readFileSync } from 'node:fs';

const [baseURL, model, promptsFile, concArg, maxTokArg] = process.argv.slice(2);
const prompts = readFileSync(promptsFile, 'utf8').split('\n').filter((l) => l.length);
const conc = parseInt(concArg, 10);
const maxTokens = parseInt(maxTokArg, 10);
// The SDK's default retries (2): the simulator may close an idle keep-alive
// connection just as a request is sent, which the SDK, like libcurl, retries.
const client = new OpenAI({ baseURL, apiKey: 'unused', timeout: 60000 });
const template = (p) => `${p}\nPlease reason step by step, and put your final answer within \\boxed{}.`;

let next = 0, ok = 0, failed = 0;
async function lane() {
  while (next < prompts.length) {
    const i = next++;
    try {
      const r = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: template(prompts[i]) }],
        temperature: 0.6, top_p: 0.95, max_tokens: maxTokens, seed: i,
      });
      if (r.choices && r.choices.length) ok++;
    } catch (e) {
      failed++;
    }
  }
}
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
await Promise.all(Array.from({ length: conc }, lane));
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({ requests: prompts.length, ok, failed, wall_s: wall, cpu_s: (cpu.user + cpu.system) / 1e6 }));
