/* tflm-train bare-metal support for Cortex-M under QEMU (mps2-an386 / mps2-an500) or a real
 * board with a debugger: semihosting output and exit status, a SysTick instruction counter and
 * a stack high-water mark. Used by the firmware that `tflm-train firmware` generates. */
#ifndef TT_CORTEX_M_H
#define TT_CORTEX_M_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Semihosting (bkpt 0xAB): SYS_WRITE0 / SYS_WRITEC to the host's stdout. */
void tt_cm_puts(const char *s);
void tt_cm_putc(char c);
/* printf through vsnprintf into a stack buffer (lines up to 255 characters). */
int tt_cm_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Decimal text of a 64-bit value (newlib-nano's printf has no %llu); buf holds >= 21 chars. */
const char *tt_cm_u64(uint64_t v, char *buf);
/* SYS_EXIT_EXTENDED: QEMU exits with this status. */
void tt_cm_exit(int status) __attribute__((noreturn));

/* SysTick on the processor clock, reload 2^24, wraps counted in its interrupt. Under QEMU
 * -icount shift=0 each instruction advances virtual time by 1 ns, so ticks * (1e9 / f_cpu)
 * = instructions; tt_cm_calibrate measures that factor on a loop of known length. */
void tt_cm_counter_start(void);
uint64_t tt_cm_ticks(void);
/* Runs `subs; bne` n times (2n instructions) between two counter reads; returns the ticks. */
uint64_t tt_cm_calibrate(uint32_t n);

/* Stack: fill the unused part with a pattern, later report the deepest use in bytes. */
void tt_cm_stack_paint(void);
uint32_t tt_cm_stack_used(void);
uint32_t tt_cm_stack_size(void);

#ifdef __cplusplus
}
#endif
#endif /* TT_CORTEX_M_H */
