/* teacher.c - request bodies, the SSE parser and the response parser (see teacher.h). */
#include "teacher.h"
#include "hash.h"
#include "json.h"
#include "text.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t teacher_seed(uint64_t profile_seed, const char *prompt_hash, int k)
{
	uint64_t h = hash_mix64(profile_seed, hash64(prompt_hash, strlen(prompt_hash), 0));
	return hash_mix64(h, (uint64_t)k) & 0x7fffffffu;
}

int teacher_user_message(const char *template, const char *prompt, struct buf *out)
{
	static const char tag[] = "{prompt}";
	const char *p = template, *q;
	int rc = 0;

	while (!rc && (q = strstr(p, tag))) {
		rc = buf_append(out, p, (size_t)(q - p));
		if (!rc)
			rc = buf_puts(out, prompt);
		p = q + sizeof(tag) - 1;
	}
	return rc ? rc : buf_puts(out, p);
}

static int put_num(struct buf *out, const char *key, double v)
{
	char num[40];
	json_num_str(v, num, sizeof(num));
	return buf_printf(out, ",\"%s\":%s", key, num);
}

int teacher_request_body(const struct teacher_profile *p, const char *prompt, const char *prompt_hash, int k,
			 int stream, struct buf *out)
{
	struct buf user = BUF_INIT(out->max);
	int rc = buf_puts(out, "{\"model\":");

	if (!rc)
		rc = json_append_str(out, p->model, strlen(p->model));
	if (!rc)
		rc = buf_puts(out, ",\"messages\":[");
	if (!rc && p->system) {
		rc = buf_puts(out, "{\"role\":\"system\",\"content\":");
		if (!rc)
			rc = json_append_str(out, p->system, strlen(p->system));
		if (!rc)
			rc = buf_puts(out, "},");
	}
	if (!rc)
		rc = teacher_user_message(p->template, prompt, &user);
	if (!rc)
		rc = buf_puts(out, "{\"role\":\"user\",\"content\":");
	if (!rc)
		rc = json_append_str(out, buf_str(&user), user.len);
	if (!rc)
		rc = buf_puts(out, "}]");
	if (!rc)
		rc = put_num(out, "temperature", p->temperature);
	if (!rc)
		rc = put_num(out, "top_p", p->top_p);
	if (!rc && p->max_tokens > 0)
		rc = buf_printf(out, ",\"max_tokens\":%lld", (long long)p->max_tokens);
	if (!rc)
		rc = buf_printf(out, ",\"seed\":%llu",
				(unsigned long long)teacher_seed(p->seed, prompt_hash, k));
	if (!rc && stream)
		rc = buf_puts(out, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
	if (!rc)
		rc = buf_putc(out, '}');
	buf_release(&user);
	return rc;
}

int teacher_profile_canonical(const struct teacher_profile *p, struct buf *out)
{
	int rc = buf_puts(out, "{\"model\":");
	if (!rc)
		rc = json_append_str(out, p->model, strlen(p->model));
	if (!rc)
		rc = buf_puts(out, ",\"system\":");
	if (!rc)
		rc = p->system ? json_append_str(out, p->system, strlen(p->system)) : buf_puts(out, "null");
	if (!rc)
		rc = buf_puts(out, ",\"template\":");
	if (!rc)
		rc = json_append_str(out, p->template, strlen(p->template));
	if (!rc)
		rc = put_num(out, "temperature", p->temperature);
	if (!rc)
		rc = put_num(out, "top_p", p->top_p);
	if (!rc)
		rc = buf_printf(out, ",\"max_tokens\":%lld,\"seed\":%llu}", (long long)p->max_tokens,
				(unsigned long long)p->seed);
	return rc;
}

/* --- SSE ------------------------------------------------------------- */

void teacher_sse_init(struct teacher_sse *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->line, max);
	buf_init(&s->data, max);
	buf_init(&s->content, max);
	buf_init(&s->reasoning_content, max);
	buf_init(&s->reasoning, max);
}

void teacher_sse_release(struct teacher_sse *s)
{
	buf_release(&s->line);
	buf_release(&s->data);
	buf_release(&s->content);
	buf_release(&s->reasoning_content);
	buf_release(&s->reasoning);
	free(s->id);
	free(s->model);
	free(s->finish_reason);
	free(s->usage_json);
	free(s->error_json);
	memset(s, 0, sizeof(*s));
}

static void keep_str(char **dst, const char *v)
{
	if (v && !*dst)
		*dst = xstrdup(v);
}

static int append_delta(struct buf *b, const cJSON *delta, const char *key, int *seen)
{
	const char *v = json_get_str(delta, key);
	if (!v)
		return 0;
	if (seen)
		*seen = 1;
	return buf_puts(b, v);
}

/* One complete event's data. */
static int sse_event(struct teacher_sse *s)
{
	const cJSON *choices, *c0, *delta, *usage;
	cJSON *j;
	int rc = 0;

	if (s->data.len == 6 && !memcmp(s->data.data, "[DONE]", 6)) {
		s->done = 1;
		buf_reset(&s->data);
		return 0;
	}
	j = json_parse(buf_str(&s->data), s->data.len);
	buf_reset(&s->data);
	if (!j || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return DERR_TEACHER_MALFORMED;
	}
	s->events++;
	if (cJSON_GetObjectItemCaseSensitive(j, "error")) {
		if (!s->error_json)
			s->error_json = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "error"));
		cJSON_Delete(j);
		return 0;
	}
	keep_str(&s->id, json_get_str(j, "id"));
	keep_str(&s->model, json_get_str(j, "model"));
	choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
	c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
	if (cJSON_IsObject(c0)) {
		const char *fr = json_get_str(c0, "finish_reason");
		delta = cJSON_GetObjectItemCaseSensitive(c0, "delta");
		if (cJSON_IsObject(delta)) {
			rc = append_delta(&s->content, delta, "content", NULL);
			if (!rc)
				rc = append_delta(&s->reasoning_content, delta, "reasoning_content",
						  &s->has_reasoning_content);
			if (!rc)
				rc = append_delta(&s->reasoning, delta, "reasoning", &s->has_reasoning);
		}
		if (fr) {
			free(s->finish_reason);
			s->finish_reason = xstrdup(fr);
		}
	}
	usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
	if (cJSON_IsObject(usage)) {
		free(s->usage_json);
		s->usage_json = cJSON_PrintUnformatted(usage);
	}
	cJSON_Delete(j);
	return rc;
}

static int sse_line(struct teacher_sse *s, const char *p, size_t n)
{
	if (n && p[n - 1] == '\r')
		n--;
	if (n == 0)
		return s->data.len ? sse_event(s) : 0;
	if (n >= 5 && !memcmp(p, "data:", 5)) {
		p += 5;
		n -= 5;
		if (n && *p == ' ') {
			p++;
			n--;
		}
		if (s->data.len && buf_putc(&s->data, '\n'))
			return DERR_LIMIT;
		return buf_append(&s->data, p, n);
	}
	return 0; /* comments (":"), event:, id:, retry: carry nothing we need */
}

int teacher_sse_feed(struct teacher_sse *s, const char *p, size_t n)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t len = nl ? (size_t)(nl - p) : n;
		int rc;
		if (!nl)
			return buf_append(&s->line, p, len);
		if (s->line.len) {
			rc = buf_append(&s->line, p, len);
			if (!rc)
				rc = sse_line(s, s->line.data, s->line.len);
			buf_reset(&s->line);
		} else {
			rc = sse_line(s, p, len);
		}
		if (rc)
			return rc;
		p += len + 1;
		n -= len + 1;
	}
	return 0;
}

int teacher_sse_finish(struct teacher_sse *s, struct buf *out, struct derr *e)
{
	int rc = 0;

	if (s->line.len) {
		rc = sse_line(s, s->line.data, s->line.len);
		buf_reset(&s->line);
	}
	if (!rc && s->data.len)
		rc = sse_event(s);
	if (rc == DERR_LIMIT)
		return derr_set(e, DERR_TEACHER_MALFORMED, "stream larger than the response cap");
	if (rc)
		return derr_set(e, DERR_TEACHER_MALFORMED, "stream event is not JSON");
	if (s->error_json)
		return derr_set(e, DERR_TEACHER_MALFORMED, "stream carried an error: %.300s", s->error_json);
	if (!s->events)
		return derr_set(e, DERR_TEACHER_MALFORMED, "empty stream");
	rc = buf_puts(out, "{\"id\":");
	if (!rc)
		rc = s->id ? json_append_str(out, s->id, strlen(s->id)) : buf_puts(out, "null");
	if (!rc)
		rc = buf_puts(out, ",\"object\":\"chat.completion\",\"model\":");
	if (!rc)
		rc = s->model ? json_append_str(out, s->model, strlen(s->model)) : buf_puts(out, "null");
	if (!rc)
		rc = buf_puts(out,
			      ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
	if (!rc)
		rc = json_append_str(out, buf_str(&s->content), s->content.len);
	if (!rc && s->has_reasoning_content) {
		rc = buf_puts(out, ",\"reasoning_content\":");
		if (!rc)
			rc = json_append_str(out, buf_str(&s->reasoning_content), s->reasoning_content.len);
	}
	if (!rc && s->has_reasoning) {
		rc = buf_puts(out, ",\"reasoning\":");
		if (!rc)
			rc = json_append_str(out, buf_str(&s->reasoning), s->reasoning.len);
	}
	if (!rc)
		rc = buf_puts(out, "},\"finish_reason\":");
	if (!rc)
		rc = s->finish_reason ? json_append_str(out, s->finish_reason, strlen(s->finish_reason))
				      : buf_puts(out, "null");
	if (!rc)
		rc = buf_printf(out, "}],\"usage\":%s}", s->usage_json ? s->usage_json : "null");
	if (rc)
		return derr_set(e, DERR_TEACHER_MALFORMED, "stream larger than the response cap");
	return 0;
}

/* --- responses ------------------------------------------------------- */

static const char *const placement_names[] = {
	[TP_NONE] = "none",
	[TP_REASONING_CONTENT] = "reasoning_content",
	[TP_REASONING] = "reasoning",
	[TP_THINK_TAGS] = "think_tags",
	[TP_CLOSE_TAG_ONLY] = "close_tag_only",
};

const char *teacher_placement_name(enum teacher_placement p)
{
	return (unsigned)p < ARRAY_SIZE(placement_names) ? placement_names[p] : "none";
}

void teacher_response_release(struct teacher_response *r)
{
	free(r->reasoning);
	free(r->answer);
	free(r->finish_reason);
	free(r->id);
	free(r->model);
	memset(r, 0, sizeof(*r));
}

static int is_space(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Trim white space and repair UTF-8; returns a new string, *repaired |= 1 on repair. */
static char *clean_text(const char *p, size_t n, int *repaired)
{
	struct buf b = BUF_INIT(n * 3 + 16);
	long rep;

	while (n && is_space(*p)) {
		p++;
		n--;
	}
	while (n && is_space(p[n - 1]))
		n--;
	rep = utf8_repair(p, n, &b);
	if (rep > 0)
		*repaired = 1;
	if (!b.data)
		return xstrdup("");
	return buf_detach(&b, NULL);
}

static const char *find_mem(const char *h, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	const char *end = h + n;
	while (h + k <= end) {
		const char *p = memchr(h, needle[0], (size_t)(end - h));
		if (!p || p + k > end)
			return NULL;
		if (!memcmp(p, needle, k))
			return p;
		h = p + 1;
	}
	return NULL;
}

int teacher_split(const char *content, size_t n, const char *rc, const char *rs, struct teacher_response *r)
{
	const char *open = find_mem(content, n, "<think>");
	const char *close = find_mem(content, n, "</think>");

	r->think_closed = 1;
	if (rc && *rc) {
		r->placement = TP_REASONING_CONTENT;
		r->reasoning = clean_text(rc, strlen(rc), &r->utf8_repaired);
		r->answer = clean_text(content, n, &r->utf8_repaired);
	} else if (rs && *rs) {
		r->placement = TP_REASONING;
		r->reasoning = clean_text(rs, strlen(rs), &r->utf8_repaired);
		r->answer = clean_text(content, n, &r->utf8_repaired);
	} else if (open && (!close || close > open)) {
		const char *body = open + 7;
		close = find_mem(body, (size_t)(content + n - body), "</think>");
		r->placement = TP_THINK_TAGS;
		if (close) {
			const char *after = close + 8;
			r->reasoning = clean_text(body, (size_t)(close - body), &r->utf8_repaired);
			r->answer = clean_text(after, (size_t)(content + n - after), &r->utf8_repaired);
		} else {
			/* Opened and never closed: truncated thinking, no answer. */
			r->think_closed = 0;
			r->reasoning = clean_text(body, (size_t)(content + n - body), &r->utf8_repaired);
			r->answer = xstrdup("");
		}
	} else if (close) {
		const char *after = close + 8;
		r->placement = TP_CLOSE_TAG_ONLY;
		r->reasoning = clean_text(content, (size_t)(close - content), &r->utf8_repaired);
		r->answer = clean_text(after, (size_t)(content + n - after), &r->utf8_repaired);
	} else {
		r->placement = rc ? TP_REASONING_CONTENT : rs ? TP_REASONING : TP_NONE;
		r->reasoning = xstrdup("");
		r->answer = clean_text(content, n, &r->utf8_repaired);
	}
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static int64_t get_tokens(const cJSON *usage, const char *key)
{
	double v;
	if (!cJSON_IsObject(usage) || json_get_num(usage, key, &v) || v < 0 || v > 9e15)
		return -1;
	return (int64_t)v;
}

int teacher_parse_response(const char *body, size_t n, struct teacher_response *r, struct derr *e)
{
	cJSON *j = json_parse(body, n);
	const cJSON *choices, *c0, *msg, *content, *usage;
	const char *text;

	memset(r, 0, sizeof(*r));
	if (!j || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return derr_set(e, DERR_TEACHER_MALFORMED, "response is not a JSON object");
	}
	if (cJSON_GetObjectItemCaseSensitive(j, "error")) {
		char *err = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "error"));
		derr_set(e, DERR_TEACHER_MALFORMED, "response carries an error: %.300s", err ? err : "");
		free(err);
		cJSON_Delete(j);
		return DERR_TEACHER_MALFORMED;
	}
	choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
	c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
	msg = cJSON_IsObject(c0) ? cJSON_GetObjectItemCaseSensitive(c0, "message") : NULL;
	if (!cJSON_IsObject(msg)) {
		cJSON_Delete(j);
		return derr_set(e, DERR_TEACHER_MALFORMED, "response has no choices[0].message");
	}
	content = cJSON_GetObjectItemCaseSensitive(msg, "content");
	if (!cJSON_IsString(content) && !cJSON_IsNull(content) && content) {
		cJSON_Delete(j);
		return derr_set(e, DERR_TEACHER_MALFORMED, "message content is not a string");
	}
	text = content && cJSON_IsString(content) ? content->valuestring : "";
	teacher_split(text, strlen(text), json_get_str(msg, "reasoning_content"),
		      json_get_str(msg, "reasoning"), r);
	r->finish_reason = dup_or_null(json_get_str(c0, "finish_reason"));
	r->id = dup_or_null(json_get_str(j, "id"));
	r->model = dup_or_null(json_get_str(j, "model"));
	usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
	r->prompt_tokens = get_tokens(usage, "prompt_tokens");
	r->completion_tokens = get_tokens(usage, "completion_tokens");
	cJSON_Delete(j);
	return 0;
}
