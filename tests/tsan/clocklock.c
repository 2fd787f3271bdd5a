/*
 * clocklock.c - LD_PRELOADed into the TSan runs of the threaded suites.
 *
 * Why: the library takes its robust mutexes with pthread_mutex_clocklock
 * (shmc__lock in shm/epoch.c), which ThreadSanitizer does not intercept
 * (neither GCC 12's libtsan nor clang 14's: only pthread_mutex_timedlock).
 * TSan then never sees a lock taken, reports every unlock as "unlock of an
 * unlocked mutex" and every access made under log_lock or index_lock as a
 * data race: noise that would hide real reports.
 *
 * What: the same call made with pthread_mutex_timedlock, which TSan does
 * intercept (EOWNERDEAD included).  The deadline is converted from the
 * caller's clock to CLOCK_REALTIME; only the length of one timed slice can
 * differ (by a clock step), and shmc__lock loops on ETIMEDOUT anyway.
 * Nothing else changes: the same mutex, the same return codes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <time.h>

int pthread_mutex_clocklock(pthread_mutex_t *restrict mu, clockid_t clock,
                            const struct timespec *restrict abstime);

int pthread_mutex_clocklock(pthread_mutex_t *restrict mu, clockid_t clock,
                            const struct timespec *restrict abstime)
{
	struct timespec now, rt;
	if (clock_gettime(clock, &now) != 0)
		return EINVAL;
	long long left = (long long)(abstime->tv_sec - now.tv_sec) *
	                         1000000000LL +
	                 (abstime->tv_nsec - now.tv_nsec);
	if (left < 0)
		left = 0;
	clock_gettime(CLOCK_REALTIME, &rt);
	rt.tv_sec += (time_t)(left / 1000000000LL);
	rt.tv_nsec += (long)(left % 1000000000LL);
	if (rt.tv_nsec >= 1000000000L) {
		rt.tv_sec++;
		rt.tv_nsec -= 1000000000L;
	}
	return pthread_mutex_timedlock(mu, &rt);
}
