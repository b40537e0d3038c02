/* util/clock.h: a monotonic clock in milliseconds, for durations and deadlines (it does
 * not jump when the wall clock is set). */
#ifndef SAMC_CLOCK_H
#define SAMC_CLOCK_H

double monotonic_ms(void);

#endif
