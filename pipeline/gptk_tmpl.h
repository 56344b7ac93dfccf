/*
 * gptk_tmpl.h - the GPT layer kernels, written once and instantiated by
 * gptk.c for each (real type, instruction set): float generic, float AVX2+FMA
 * and double (for the finite-difference gradient checks).  Not a header to
 * include anywhere else.  Before including, gptk.c defines:
 *   R        the real type (float or double)
 *   F(n)     the suffixed name of a kernel (n##_f, n##_f_avx2, n##_d)
 *   GEMM     cblas_sgemm or cblas_dgemm
 *   EXPR(x)  exp for R (a vectorizable polynomial for float)
 *   OPS_T    the ops table type to fill (struct gptk_ops or gptk_ops_d)
 *
 * Shapes follow llm.c's train_gpt2.c: B batch, T time, C channels, NH heads,
 * N = B*T rows, V vocabulary, Vp padded vocabulary.  Every backward kernel
 * accumulates (+=) into its gradient outputs.  Work is split into
 * contiguous ranges over a fixed number of threads, so the result depends
 * only on the thread count, never on timing.
 */

/* ---- embeddings: out (N,C) = wte[inp] + wpe[pos] -------------------------- */

static void F(encoder_fwd)(R *out, const int *inp, const int *pos, const R *wte, const R *wpe, int N, int C)
{
	for (int n = 0; n < N; n++) {
		const R *a = wte + (size_t)inp[n] * C, *b = wpe + (size_t)pos[n] * C;
		R *o = out + (size_t)n * C;
		for (int c = 0; c < C; c++)
			o[c] = a[c] + b[c];
	}
}

static void F(encoder_bwd)(R *dwte, R *dwpe, const R *dout, const int *inp, const int *pos, int N, int C)
{
	for (int n = 0; n < N; n++) {
		R *a = dwte + (size_t)inp[n] * C, *b = dwpe + (size_t)pos[n] * C;
		const R *d = dout + (size_t)n * C;
		for (int c = 0; c < C; c++) {
			a[c] += d[c];
			b[c] += d[c];
		}
	}
}

/* ---- layernorm: out (N,C), mean/rstd (N) ---------------------------------- */

struct F(ln_args) {
	R *out, *mean, *rstd, *dinp, *dw, *db;
	const R *inp, *w, *b, *dout;
	int N, C;
};

static void F(ln_fwd_rows)(void *ctx, int n0, int n1)
{
	struct F(ln_args) *a = ctx;
	int C = a->C;
	for (int n = n0; n < n1; n++) {
		const R *x = a->inp + (size_t)n * C;
		R *o = a->out + (size_t)n * C;
		R m = 0, v = 0, s;
		for (int c = 0; c < C; c++)
			m += x[c];
		m /= C;
		for (int c = 0; c < C; c++)
			v += (x[c] - m) * (x[c] - m);
		v /= C;
		s = (R)1 / SQRTR(v + (R)1e-5);
		for (int c = 0; c < C; c++)
			o[c] = (x[c] - m) * s * a->w[c] + a->b[c];
		a->mean[n] = m;
		a->rstd[n] = s;
	}
}

static void F(layernorm_fwd)(R *out, R *mean, R *rstd, const R *inp, const R *w, const R *b, int N, int C,
			     int nth)
{
	struct F(ln_args) a = {.out = out, .mean = mean, .rstd = rstd, .inp = inp, .w = w, .b = b, .C = C};
	gptk_par(nth, N, F(ln_fwd_rows), &a);
}

static void F(ln_bwd_rows)(void *ctx, int n0, int n1)
{
	struct F(ln_args) *a = ctx;
	int C = a->C;
	for (int n = n0; n < n1; n++) {
		const R *x = a->inp + (size_t)n * C, *d = a->dout + (size_t)n * C;
		R *dx = a->dinp + (size_t)n * C;
		R m = a->mean[n], s = a->rstd[n], dm = 0, dmn = 0;
		for (int c = 0; c < C; c++) {
			R dn = a->w[c] * d[c];
			dm += dn;
			dmn += dn * (x[c] - m) * s;
		}
		dm /= C;
		dmn /= C;
		for (int c = 0; c < C; c++) {
			R dn = a->w[c] * d[c];
			dx[c] += (dn - dm - (x[c] - m) * s * dmn) * s;
		}
	}
}

/* dw, db: reductions over rows, split by column so each thread owns its sums. */
static void F(ln_bwd_cols)(void *ctx, int c0, int c1)
{
	struct F(ln_args) *a = ctx;
	int C = a->C;
	for (int n = 0; n < a->N; n++) {
		const R *x = a->inp + (size_t)n * C, *d = a->dout + (size_t)n * C;
		R m = a->mean[n], s = a->rstd[n];
		for (int c = c0; c < c1; c++) {
			a->dw[c] += (x[c] - m) * s * d[c];
			a->db[c] += d[c];
		}
	}
}

static void F(layernorm_bwd)(R *dinp, R *dw, R *db, const R *dout, const R *inp, const R *w, const R *mean,
			     const R *rstd, int N, int C, int nth)
{
	struct F(ln_args) a = {.dinp = dinp,
			       .dw = dw,
			       .db = db,
			       .dout = dout,
			       .inp = inp,
			       .w = w,
			       .mean = (R *)mean,
			       .rstd = (R *)rstd,
			       .N = N,
			       .C = C};
	gptk_par(nth, N, F(ln_bwd_rows), &a);
	gptk_par(nth, C, F(ln_bwd_cols), &a);
}

/* ---- matmul: out (N,OC) = inp (N,C) @ w(OC,C)^T + bias(OC) ---------------- */

struct F(mm_args) {
	R *out, *dinp, *dw, *dbias;
	const R *inp, *w, *bias, *dout;
	int N, C, OC;
};

static void F(mm_fwd_rows)(void *ctx, int n0, int n1)
{
	struct F(mm_args) *a = ctx;
	int C = a->C, OC = a->OC;
	if (n1 <= n0)
		return;
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, n1 - n0, OC, C, 1, a->inp + (size_t)n0 * C, C, a->w, C,
	     0, a->out + (size_t)n0 * OC, OC);
	if (a->bias)
		for (int n = n0; n < n1; n++) {
			R *o = a->out + (size_t)n * OC;
			for (int k = 0; k < OC; k++)
				o[k] += a->bias[k];
		}
}

static void F(matmul_fwd)(R *out, const R *inp, const R *w, const R *bias, int N, int C, int OC, int nth)
{
	struct F(mm_args) a = {.out = out, .inp = inp, .w = w, .bias = bias, .N = N, .C = C, .OC = OC};
	gptk_par(nth, N, F(mm_fwd_rows), &a);
}

/* dinp (N,C) += dout (N,OC) @ w (OC,C): split by rows. */
static void F(mm_bwd_rows)(void *ctx, int n0, int n1)
{
	struct F(mm_args) *a = ctx;
	if (n1 <= n0)
		return;
	GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, n1 - n0, a->C, a->OC, 1, a->dout + (size_t)n0 * a->OC,
	     a->OC, a->w, a->C, 1, a->dinp + (size_t)n0 * a->C, a->C);
}

/* dw (OC,C) += dout^T (OC,N) @ inp (N,C), dbias (OC) += column sums: split by OC. */
static void F(mm_bwd_oc)(void *ctx, int k0, int k1)
{
	struct F(mm_args) *a = ctx;
	if (k1 <= k0)
		return;
	GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, k1 - k0, a->C, a->N, 1, a->dout + k0, a->OC, a->inp,
	     a->C, 1, a->dw + (size_t)k0 * a->C, a->C);
	if (a->dbias)
		for (int n = 0; n < a->N; n++) {
			const R *d = a->dout + (size_t)n * a->OC;
			for (int k = k0; k < k1; k++)
				a->dbias[k] += d[k];
		}
}

static void F(matmul_bwd)(R *dinp, R *dw, R *dbias, const R *dout, const R *inp, const R *w, int N, int C,
			  int OC, int nth)
{
	struct F(mm_args) a = {.dinp = dinp,
			       .dw = dw,
			       .dbias = dbias,
			       .dout = dout,
			       .inp = inp,
			       .w = w,
			       .N = N,
			       .C = C,
			       .OC = OC};
	if (dinp)
		gptk_par(nth, N, F(mm_bwd_rows), &a);
	gptk_par(nth, OC, F(mm_bwd_oc), &a);
}

/* ---- causal self-attention ------------------------------------------------
 * qkv (B,T,3C) holds q, k, v side by side; out (B,T,C); lse (B,NH,T) keeps the
 * log-sum-exp of each softmax row, the only thing the backward pass needs to
 * recompute the probabilities.  Queries are taken in blocks of GPTK_QB rows:
 * each (b, h, block) needs one (QB, T) score tile per thread, never a
 * (B, NH, T, T) buffer.  The products are GEMMs over strided views of qkv. */

struct F(att_args) {
	R *out, *lse, *dqkv;
	const R *qkv, *dout, *o;
	int B, T, C, NH;
};

/* Scores of query rows [t0, t0+nq) against keys [0, n), probabilities in
 * place (zero above the diagonal).  With lse_in: p = exp(s - lse); without:
 * normalize and store the row's lse. */
static void F(att_probs)(R *S, const R *q, const R *k, int nq, int n, int hs, int ld, int t0, R scale, R *lse,
			 int have_lse)
{
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nq, n, hs, scale, q, ld, k, ld, 0, S, n);
	for (int r = 0; r < nq; r++) {
		R *s = S + (size_t)r * n;
		int t = t0 + r;
		if (have_lse) {
			R l = lse[t];
			for (int j = 0; j <= t; j++)
				s[j] = EXPR(s[j] - l);
		} else {
			R mx = s[0], sum = 0, inv;
			for (int j = 1; j <= t; j++)
				mx = s[j] > mx ? s[j] : mx;
			for (int j = 0; j <= t; j++) {
				s[j] = EXPR(s[j] - mx);
				sum += s[j];
			}
			inv = (R)1 / sum;
			for (int j = 0; j <= t; j++)
				s[j] *= inv;
			lse[t] = mx + LOGR(sum);
		}
		for (int j = t + 1; j < n; j++)
			s[j] = 0;
	}
}

static void F(att_fwd_heads)(void *ctx, int u0, int u1)
{
	struct F(att_args) *a = ctx;
	int T = a->T, C = a->C, NH = a->NH, hs = C / NH, C3 = 3 * C;
	R scale = (R)1 / SQRTR((R)hs);
	R *S = xmalloc(sizeof(R) * GPTK_QB * (size_t)T);

	for (int u = u0; u < u1; u++) {
		int b = u / NH, h = u % NH;
		const R *base = a->qkv + (size_t)b * T * C3 + h * hs;
		R *lse = a->lse + (size_t)u * T;
		for (int t0 = 0; t0 < T; t0 += GPTK_QB) {
			int nq = T - t0 < GPTK_QB ? T - t0 : GPTK_QB, n = t0 + nq;
			F(att_probs)(S, base + (size_t)t0 * C3, base + C, nq, n, hs, C3, t0, scale, lse, 0);
			GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hs, n, 1, S, n, base + 2 * C, C3,
			     0, a->out + ((size_t)b * T + t0) * C + h * hs, C);
		}
	}
	free(S);
}

static void F(attention_fwd)(R *out, R *lse, const R *qkv, int B, int T, int C, int NH, int nth)
{
	struct F(att_args) a = {.out = out, .lse = lse, .qkv = qkv, .B = B, .T = T, .C = C, .NH = NH};
	gptk_par(nth, B * NH, F(att_fwd_heads), &a);
}

static void F(att_bwd_heads)(void *ctx, int u0, int u1)
{
	struct F(att_args) *a = ctx;
	int T = a->T, C = a->C, NH = a->NH, hs = C / NH, C3 = 3 * C;
	R scale = (R)1 / SQRTR((R)hs);
	R *P = xmalloc(sizeof(R) * GPTK_QB * (size_t)T), *dP = xmalloc(sizeof(R) * GPTK_QB * (size_t)T);

	for (int u = u0; u < u1; u++) {
		int b = u / NH, h = u % NH;
		const R *base = a->qkv + (size_t)b * T * C3 + h * hs;
		R *dbase = a->dqkv + (size_t)b * T * C3 + h * hs;
		const R *lse = a->lse + (size_t)u * T;
		for (int t0 = 0; t0 < T; t0 += GPTK_QB) {
			int nq = T - t0 < GPTK_QB ? T - t0 : GPTK_QB, n = t0 + nq;
			const R *q = base + (size_t)t0 * C3;
			const R *dO = a->dout + ((size_t)b * T + t0) * C + h * hs;
			const R *O = a->o + ((size_t)b * T + t0) * C + h * hs;
			F(att_probs)(P, q, base + C, nq, n, hs, C3, t0, scale, (R *)lse, 1);
			/* dP (nq,n) = dO (nq,hs) @ V^T */
			GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nq, n, hs, 1, dO, C, base + 2 * C, C3,
			     0, dP, n);
			for (int r = 0; r < nq; r++) {
				const R *dor = dO + (size_t)r * C, * or = O + (size_t)r * C;
				R *p = P + (size_t)r * n, *dp = dP + (size_t)r * n, D = 0;
				for (int i = 0; i < hs; i++)
					D += dor[i] * or [i];
				/* dS = P * (dP - D), zero above the diagonal since P is */
				for (int j = 0; j < n; j++)
					dp[j] = p[j] * (dp[j] - D);
			}
			/* dQ += scale dS @ K;  dK += scale dS^T @ Q;  dV += P^T @ dO */
			GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hs, n, scale, dP, n, base + C, C3,
			     1, dbase + (size_t)t0 * C3, C3);
			GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, n, hs, nq, scale, dP, n, q, C3, 1,
			     dbase + C, C3);
			GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, n, hs, nq, 1, P, n, dO, C, 1,
			     dbase + 2 * C, C3);
		}
	}
	free(P);
	free(dP);
}

static void F(attention_bwd)(R *dqkv, const R *dout, const R *qkv, const R *out, const R *lse, int B, int T,
			     int C, int NH, int nth)
{
	struct F(att_args) a = {.dqkv = dqkv,
				.dout = dout,
				.qkv = qkv,
				.o = out,
				.lse = (R *)lse,
				.B = B,
				.T = T,
				.C = C,
				.NH = NH};
	gptk_par(nth, B * NH, F(att_bwd_heads), &a);
}

/* ---- GELU (tanh form), residual ------------------------------------------ */

#define GELU_K ((R)0.7978845608028654) /* sqrt(2/pi) */

struct F(ew_args) {
	R *out, *dinp;
	const R *a, *b, *dout;
};

/* tanh(u) = 1 - 2 / (1 + exp(2u)): one exp, vectorizable with EXPR. */
static inline R F(tanh_)(R u)
{
	return (R)1 - (R)2 / ((R)1 + EXPR((R)2 * u));
}

static void F(gelu_fwd_part)(void *ctx, int i0, int i1)
{
	struct F(ew_args) *g = ctx;
	for (int i = i0; i < i1; i++) {
		R x = g->a[i];
		g->out[i] = (R)0.5 * x * ((R)1 + F(tanh_)(GELU_K * (x + (R)0.044715 * x * x * x)));
	}
}

static void F(gelu_bwd_part)(void *ctx, int i0, int i1)
{
	struct F(ew_args) *g = ctx;
	for (int i = i0; i < i1; i++) {
		R x = g->a[i], u = GELU_K * (x + (R)0.044715 * x * x * x), th = F(tanh_)(u);
		R du = GELU_K * ((R)1 + (R)3 * (R)0.044715 * x * x);
		R grad = (R)0.5 * ((R)1 + th) + (R)0.5 * x * ((R)1 - th * th) * du;
		g->dinp[i] += grad * g->dout[i];
	}
}

static void F(gelu_fwd)(R *out, const R *inp, int n, int nth)
{
	struct F(ew_args) g = {.out = out, .a = inp};
	gptk_par(nth, n, F(gelu_fwd_part), &g);
}

static void F(gelu_bwd)(R *dinp, const R *inp, const R *dout, int n, int nth)
{
	struct F(ew_args) g = {.dinp = dinp, .a = inp, .dout = dout};
	gptk_par(nth, n, F(gelu_bwd_part), &g);
}

static void F(residual_part)(void *ctx, int i0, int i1)
{
	struct F(ew_args) *g = ctx;
	for (int i = i0; i < i1; i++)
		g->out[i] = g->a[i] + g->b[i];
}

static void F(residual_fwd)(R *out, const R *a, const R *b, int n, int nth)
{
	struct F(ew_args) g = {.out = out, .a = a, .b = b};
	gptk_par(nth, n, F(residual_part), &g);
}

/* ---- softmax cross-entropy ------------------------------------------------
 * logits (N,Vp), targets (N), weights (N).  losses[n] = -log softmax[target]
 * for rows of nonzero weight (0 elsewhere).  With dlogits: dlogits[n] +=
 * weight[n] * dscale * (softmax - onehot) over the first V entries. */

struct F(ce_args) {
	R *losses, *dlogits;
	const R *logits, *weights;
	const int *targets;
	int V, Vp;
	R dscale;
};

static void F(ce_rows)(void *ctx, int n0, int n1)
{
	struct F(ce_args) *a = ctx;
	int V = a->V, Vp = a->Vp;
	R *p = xmalloc(sizeof(R) * (size_t)V);
	for (int n = n0; n < n1; n++) {
		const R *l = a->logits + (size_t)n * Vp;
		R mx = l[0], sum = 0, w = a->weights[n];
		int y = a->targets[n];
		if (w == 0) {
			a->losses[n] = 0;
			continue;
		}
		for (int v = 1; v < V; v++)
			mx = l[v] > mx ? l[v] : mx;
		for (int v = 0; v < V; v++) {
			p[v] = EXPR(l[v] - mx);
			sum += p[v];
		}
		a->losses[n] = LOGR(sum) + mx - l[y];
		if (a->dlogits) {
			R *d = a->dlogits + (size_t)n * Vp, k = w * a->dscale / sum;
			for (int v = 0; v < V; v++)
				d[v] += k * p[v];
			d[y] -= w * a->dscale;
		}
	}
	free(p);
}

static void F(crossentropy)(R *losses, R *dlogits, const R *logits, const int *targets, const R *weights,
			    R dscale, int N, int V, int Vp, int nth)
{
	struct F(ce_args) a = {.losses = losses,
			       .dlogits = dlogits,
			       .logits = logits,
			       .weights = weights,
			       .targets = targets,
			       .V = V,
			       .Vp = Vp,
			       .dscale = dscale};
	gptk_par(nth, N, F(ce_rows), &a);
}

static const OPS_T F(gptk_ops) = {
	.encoder_fwd = F(encoder_fwd),
	.encoder_bwd = F(encoder_bwd),
	.layernorm_fwd = F(layernorm_fwd),
	.layernorm_bwd = F(layernorm_bwd),
	.matmul_fwd = F(matmul_fwd),
	.matmul_bwd = F(matmul_bwd),
	.attention_fwd = F(attention_fwd),
	.attention_bwd = F(attention_bwd),
	.gelu_fwd = F(gelu_fwd),
	.gelu_bwd = F(gelu_bwd),
	.residual_fwd = F(residual_fwd),
	.crossentropy = F(crossentropy),
};

#undef GELU_K
