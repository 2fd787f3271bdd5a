/*
 * dist.c - key popularity: Zipf ranks and the rank -> key id scatter.
 *
 * ZIPF
 * Gray, Sundaresan, Englert, Baclawski, Weinberger, "Quickly generating
 * billion-record synthetic databases" (SIGMOD 1994), section on skewed
 * distributions.  For ranks 1..n with P(i) ~ 1/i^theta:
 *   zetan = sum_{i=1..n} i^-theta, alpha = 1/(1-theta),
 *   eta   = (1 - (2/n)^(1-theta)) / (1 - zeta(2)/zetan);
 *   u uniform in [0,1), uz = u * zetan:
 *   uz < 1 -> rank 1;  uz < 1 + 2^-theta -> rank 2;
 *   else rank 1 + n * (eta*u - eta + 1)^alpha.
 * The first two ranks are exact; the tail follows the continuous
 * approximation, which is what YCSB and most cache papers use, so numbers
 * are comparable.  `shmcache-bench selftest` checks the head of the
 * distribution against the exact probabilities.
 *
 * Gray's tail is an approximation: ranks 3..10 come out up to ~20% too
 * often at theta 0.99 (see `shmcache-bench selftest`).  So the default
 * generator is the exact one, rejection-inversion (Hoermann and Derflinger,
 * "Rejection-inversion to generate variates from monotone discrete
 * distributions", ACM TOMACS 1996; the form of Apache Commons'
 * RejectionInversionZipfSampler): invert the integral H of the continuous
 * hat h(x) = x^-theta, round to the nearest rank k, accept when k lies in
 * the part of [k-1/2, k+1/2] under the true mass (expected < 1.1 tries).
 * Gray's method stays available (zipf_init_gray) for comparison with YCSB.
 *
 * The draws are made before a measurement starts (into a per-worker op
 * stream), so pow() is never on a measured path.
 *
 * SCATTER
 * Rank r becomes key id (r * mul + add) mod n with mul odd and coprime to
 * n: a bijection, so every key keeps its own probability, and the hottest
 * keys are spread over the id space.
 */
#include <math.h>

#include "bench.h"

double zipf_zeta(uint64_t n, double theta)
{
	double s = 0;
	for (uint64_t i = n; i >= 1; i--) /* small terms first: less error */
		s += pow((double)i, -theta);
	return s;
}

/* log1p(x)/x and expm1(x)/x, accurate near 0. */
static double helper1(double x)
{
	return fabs(x) > 1e-8 ? log1p(x) / x
	                      : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}

static double helper2(double x)
{
	return fabs(x) > 1e-8 ? expm1(x) / x
	                      : 1 + x * 0.5 * (1 + x * (1.0 / 3) * (1 + 0.25 * x));
}

static double ri_h(const struct zipf *z, double x)
{
	return exp(-z->theta * log(x));
}

static double ri_H(const struct zipf *z, double x)
{
	double lx = log(x);
	return helper2((1 - z->theta) * lx) * lx;
}

static double ri_Hinv(const struct zipf *z, double x)
{
	double t = x * (1 - z->theta);
	if (t < -1)
		t = -1;
	return exp(helper1(t) * x);
}

void zipf_init(struct zipf *z, uint64_t n, double theta)
{
	zipf_init_gray(z, n, theta);
	z->exact = true;
	z->h_x1 = ri_H(z, 1.5) - 1;
	z->h_n = ri_H(z, (double)n + 0.5);
	z->s = 2 - ri_Hinv(z, ri_H(z, 2.5) - ri_h(z, 2));
}

static uint64_t zipf_next_exact(const struct zipf *z, struct rng *r)
{
	for (;;) {
		double u = z->h_n + rng_double(r) * (z->h_x1 - z->h_n);
		double x = ri_Hinv(z, u);
		double kf = floor(x + 0.5);
		if (kf < 1)
			kf = 1;
		else if (kf > (double)z->n)
			kf = (double)z->n;
		if (kf - x <= z->s || u >= ri_H(z, kf + 0.5) - ri_h(z, kf))
			return (uint64_t)kf - 1;
	}
}

void zipf_init_gray(struct zipf *z, uint64_t n, double theta)
{
	memset(z, 0, sizeof(*z));
	z->n = n;
	z->theta = theta;
	z->alpha = 1.0 / (1.0 - theta);
	z->zetan = zipf_zeta(n, theta);
	double zeta2 = 1.0 + pow(2.0, -theta);
	z->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) /
	         (1.0 - zeta2 / z->zetan);
	z->half_pow_theta = pow(0.5, theta);
}

uint64_t zipf_next(const struct zipf *z, struct rng *r)
{
	if (z->exact)
		return zipf_next_exact(z, r);
	double u = rng_double(r), uz = u * z->zetan;
	if (uz < 1.0)
		return 0;
	if (uz < 1.0 + z->half_pow_theta)
		return z->n > 1 ? 1 : 0;
	uint64_t k = (uint64_t)((double)z->n *
	                        pow(z->eta * u - z->eta + 1.0, z->alpha));
	return k < z->n ? k : z->n - 1;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

void perm_init(struct perm *p, uint64_t n, uint64_t seed)
{
	p->n = n ? n : 1;
	uint64_t m = (splitmix64(seed) % p->n) | 1;
	while (p->n > 1 && gcd(m, p->n) != 1)
		m += 2;
	p->mul = p->n > 1 ? m : 1;
	p->add = splitmix64(seed + 1) % p->n;
}

void key_prefix(char *key, unsigned ksize)
{
	memset(key, 'k', ksize);
}

double value_size_mean(unsigned vsize)
{
	if (vsize != VSIZE_MIXED)
		return vsize;
	double s = 0;
	for (uint64_t i = 0; i < 100000; i++)
		s += value_size(VSIZE_MIXED, i);
	return s / 100000.0;
}

unsigned value_size_max(unsigned vsize)
{
	return vsize != VSIZE_MIXED ? vsize : 2048 + 6144;
}
