/* tt_run: load a .tflite with the C engine, fill the inputs deterministically, invoke, and
 * print the arena size and an output checksum. The exit code is the tt_status.
 *
 *   tt_run MODEL ARENA_BYTES [SEED]      one model
 *   tt_run --each ARENA_BYTES MODEL...   many models, one "status" line each, exit 0
 *   tt_run --flex FILE...                raw FlexBuffer maps (custom options): one line each,
 *                                        "ok N key=value ..." or "bad: reason", exit 0
 *
 * Model and arena are heap blocks of exactly their size, so a sanitizer build (ASan) flags
 * any access past either end; the engine itself never allocates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tt_engine.h"
#include "../engine/tt_flexbuffer.h"

static uint8_t *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  uint8_t *data = NULL;
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
  if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
    data = (uint8_t *)malloc(n > 0 ? (size_t)n : 1u);
    if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
      free(data);
      data = NULL;
    }
  }
  fclose(f);
  *size = n > 0 ? (size_t)n : 0;
  return data;
}

/* xorshift32: deterministic input bytes. */
static uint32_t next(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

static int run(const char *path, size_t arena_size, uint32_t seed, int verbose) {
  size_t size;
  uint8_t *model = read_file(path, &size);
  if (model == NULL) {
    fprintf(stderr, "%s: cannot read\n", path);
    return 100;
  }
  uint8_t *arena = (uint8_t *)malloc(arena_size ? arena_size : 1u);
  char err[256];
  tt_engine *e = NULL;
  tt_status s = tt_engine_create(model, size, arena, arena_size, &e, err, sizeof err);
  if (s != TT_OK) {
    printf("%s: create %s: %s\n", path, tt_status_name(s), err);
  } else {
    uint32_t state = seed ? seed : 1u;
    for (int32_t i = 0; i < tt_engine_num_inputs(e); ++i) {
      tt_tensor view;
      tt_tensor *t = tt_engine_input(e, i, &view);
      uint8_t *p = (uint8_t *)t->data;
      if (t->type == TT_TYPE_FLOAT32) {
        for (size_t k = 0; k + 4 <= t->bytes; k += 4) {
          float v = (float)((int32_t)(next(&state) % 2001u) - 1000) / 1000.0f;
          memcpy(p + k, &v, 4);
        }
      } else {
        for (size_t k = 0; k < t->bytes; ++k) p[k] = (uint8_t)next(&state);
      }
    }
    s = tt_engine_invoke(e);
    if (s != TT_OK) {
      printf("%s: invoke %s: %s\n", path, tt_status_name(s), tt_engine_error(e));
    } else if (verbose) {
      printf("arena_used %lu persistent %lu planned %lu\n",
             (unsigned long)tt_engine_arena_used(e), (unsigned long)tt_engine_arena_persistent(e),
             (unsigned long)tt_engine_arena_planned(e));
      for (int32_t i = 0; i < tt_engine_num_outputs(e); ++i) {
        tt_tensor view;
        const tt_tensor *t = tt_engine_output(e, i, &view);
        uint32_t sum = 2166136261u; /* FNV-1a */
        for (size_t k = 0; k < t->bytes; ++k) sum = (sum ^ ((const uint8_t *)t->data)[k]) * 16777619u;
        printf("output %d bytes %lu checksum %08x\n", (int)i, (unsigned long)t->bytes, sum);
      }
    } else {
      printf("%s: ok\n", path);
    }
  }
  free(arena);
  free(model);
  return (int)s;
}

/* Opens a FlexBuffer map and reads every key's integer value (the custom-option reader). */
static void flex(const char *path) {
  size_t size;
  uint8_t *data = read_file(path, &size);
  if (data == NULL) {
    printf("%s: cannot read\n", path);
    return;
  }
  tt_flex_map m;
  if (!tt_flex_map_open(&m, data, size)) {
    printf("bad: %s\n", m.why);
  } else {
    printf("ok %u", (unsigned)m.len);
    for (uint32_t i = 0; i < m.len; ++i) {
      int64_t v = 0;
      const char *key = tt_flex_map_key(&m, i);
      int r = tt_flex_map_int(&m, key, &v);
      putchar(' ');
      for (const char *c = key; *c; ++c) putchar(*c > ' ' && *c < 127 && *c != '=' ? *c : '?');
      if (r > 0) printf("=%lld", (long long)v);
      else printf("=%s", r < 0 ? "?" : "absent");
    }
    int64_t v;
    if (tt_flex_map_int(&m, "\x7fno such key", &v) != 0) printf(" LOOKUP-BUG");
    printf("\n");
  }
  free(data);
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "--flex") == 0) {
    for (int i = 2; i < argc; ++i) {
      flex(argv[i]);
      fflush(stdout);
    }
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "--each") == 0) {
    size_t arena = (size_t)strtoull(argv[2], NULL, 10);
    for (int i = 3; i < argc; ++i) {
      run(argv[i], arena, 1u, 0);
      fflush(stdout);
    }
    return 0;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL ARENA_BYTES [SEED] | --each ARENA_BYTES MODEL...\n", argv[0]);
    return 64;
  }
  return run(argv[1], (size_t)strtoull(argv[2], NULL, 10),
             argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 1u, 1);
}
