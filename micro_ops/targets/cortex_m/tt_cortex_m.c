/* Startup (vector table, reset handler), semihosting, SysTick counter for Cortex-M.
 * Reset copies .data from flash, zeroes .bss, enables the FPU when the build uses one, then
 * calls main() and exits with its return value through semihosting. */
#include "tt_cortex_m.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int main(void);

/* Linker script symbols (cortex_m.ld). */
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern uint32_t __stack_start, __stack_top;

#define TT_REG(addr) (*(volatile uint32_t *)(addr))
#define TT_SYST_CSR TT_REG(0xE000E010u)
#define TT_SYST_RVR TT_REG(0xE000E014u)
#define TT_SYST_CVR TT_REG(0xE000E018u)
#define TT_SCB_CPACR TT_REG(0xE000ED88u)
#define TT_SCB_CFSR TT_REG(0xE000ED28u)
#define TT_SCB_HFSR TT_REG(0xE000ED2Cu)
#define TT_STACK_PATTERN 0x5AA5C33Cu

/* ---- semihosting ---- */
#define TT_SYS_WRITEC 0x03
#define TT_SYS_WRITE0 0x04
#define TT_SYS_EXIT 0x18
#define TT_SYS_EXIT_EXTENDED 0x20
#define TT_ADP_STOPPED_APPLICATION_EXIT 0x20026u

static uint32_t tt_cm_semihost(uint32_t op, const void *arg) {
  register uint32_t r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void tt_cm_puts(const char *s) { (void)tt_cm_semihost(TT_SYS_WRITE0, s); }

void tt_cm_putc(char c) { (void)tt_cm_semihost(TT_SYS_WRITEC, &c); }

int tt_cm_printf(const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  const int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  tt_cm_puts(buf);
  return n;
}

const char *tt_cm_u64(uint64_t v, char *buf) {
  char tmp[21];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + (int)(v % 10u));
    v /= 10u;
  } while (v != 0u);
  for (int i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  buf[n] = '\0';
  return buf;
}

void tt_cm_exit(int status) {
  const uint32_t block[2] = {TT_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
  (void)tt_cm_semihost(TT_SYS_EXIT_EXTENDED, block);
  /* A host without the extension: plain SYS_EXIT (status 0 / 1 only). */
  (void)tt_cm_semihost(TT_SYS_EXIT, (const void *)(uintptr_t)(status == 0
                                                                  ? TT_ADP_STOPPED_APPLICATION_EXIT
                                                                  : 0x20023u));
  for (;;) {
  }
}

/* ---- SysTick counter ---- */
static volatile uint32_t tt_cm_wraps;

void tt_cm_counter_start(void) {
  TT_SYST_CSR = 0u;
  TT_SYST_RVR = 0x00FFFFFFu;
  TT_SYST_CVR = 0u; /* clears the counter: it loads RVR on the next tick */
  TT_SYST_CSR = (1u << 2) | 1u; /* processor clock, enabled, no interrupt yet */
  while (TT_SYST_CVR == 0u) {
  }
  (void)TT_SYST_CSR; /* clears COUNTFLAG */
  tt_cm_wraps = 0u;
  TT_SYST_CSR = (1u << 2) | (1u << 1) | 1u; /* now count each wrap in the interrupt */
}

uint64_t tt_cm_ticks(void) {
  uint32_t w, v;
  do { /* a wrap between the two reads is seen as a changed wrap count: read again */
    w = tt_cm_wraps;
    v = TT_SYST_CVR;
  } while (w != tt_cm_wraps);
  return ((uint64_t)w << 24) + (0x00FFFFFFu - v);
}

uint64_t tt_cm_calibrate(uint32_t n) {
  const uint64_t t0 = tt_cm_ticks();
  __asm__ volatile(
      ".syntax unified\n" /* Thumb-1 (M0+) inline assembly defaults to divided syntax */
      "1: subs %0, %0, #1\n"
      "   bne 1b\n"
      : "+l"(n)
      :
      : "cc");
  return tt_cm_ticks() - t0;
}

static void tt_cm_systick_handler(void) { tt_cm_wraps = tt_cm_wraps + 1u; }

/* ---- stack high-water mark ---- */
void tt_cm_stack_paint(void) {
  uint32_t here;
  volatile uint32_t *p = &__stack_start;
  /* Stop well below our own frame. */
  volatile uint32_t *limit = (volatile uint32_t *)((uintptr_t)&here - 64u);
  while (p < limit) *p++ = TT_STACK_PATTERN;
}

uint32_t tt_cm_stack_used(void) {
  const uint32_t *p = &__stack_start;
  while (p < &__stack_top && *p == TT_STACK_PATTERN) ++p;
  return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)p);
}

uint32_t tt_cm_stack_size(void) {
  return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)&__stack_start);
}

/* ---- faults, reset, vector table ---- */
static void tt_cm_fault_handler(void) {
  uint32_t ipsr;
  __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__)
  tt_cm_printf("fault: exception %lu, CFSR 0x%08lx, HFSR 0x%08lx\n", (unsigned long)(ipsr & 0x1FFu),
               (unsigned long)TT_SCB_CFSR, (unsigned long)TT_SCB_HFSR);
#else
  tt_cm_printf("fault: exception %lu\n", (unsigned long)(ipsr & 0x1FFu));
#endif
  tt_cm_exit(3);
}

void tt_cm_reset_handler(void) __attribute__((noreturn));
void tt_cm_reset_handler(void) {
#if defined(__ARM_FP)
  /* CP10/CP11 full access before any floating-point instruction (prepare-time code). */
  TT_SCB_CPACR |= 0xFu << 20;
  __asm__ volatile("dsb\n isb" ::: "memory");
#endif
  const uint32_t *src = &__data_load;
  for (uint32_t *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
  for (uint32_t *dst = &__bss_start; dst < &__bss_end;) *dst++ = 0u;
  tt_cm_exit(main());
}

typedef void (*tt_cm_vector)(void);

/* Initial stack pointer, reset, then the system exceptions; no device interrupts are used. */
__attribute__((section(".isr_vector"), used)) static const tt_cm_vector tt_cm_vectors[16] = {
    (tt_cm_vector)(uintptr_t)&__stack_top,
    tt_cm_reset_handler,
    tt_cm_fault_handler, /* NMI */
    tt_cm_fault_handler, /* HardFault */
    tt_cm_fault_handler, /* MemManage */
    tt_cm_fault_handler, /* BusFault */
    tt_cm_fault_handler, /* UsageFault */
    tt_cm_fault_handler, /* SecureFault (v8-M) */
    0,
    0,
    0,
    tt_cm_fault_handler, /* SVCall */
    tt_cm_fault_handler, /* DebugMonitor */
    0,
    tt_cm_fault_handler, /* PendSV */
    tt_cm_systick_handler,
};
