/*
 * cfg_int.h - helpers shared by cfg.c (tree, diagnostics), cfg_bind.c
 * (binding) and cfg_gen.c (dump, doc, schema). Not part of the API.
 */
#ifndef EP_CORE_CFG_INT_H
#define EP_CORE_CFG_INT_H

#include <stdarg.h>

#include "core/cfg.h"

/* ep_cfg__vreport adds one diagnostic located at n's value (or at its key
 * when at_key and n has one). */
void ep_cfg__vreport(ep_cfg_errs *errs, bool warning, const ep_cfg_node *n, bool at_key,
                     const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
void ep_cfg__report(ep_cfg_errs *errs, bool warning, const ep_cfg_node *n, bool at_key,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ep_cfg__errs_full is true once no further message would be stored, so
 * callers can skip expensive work (edit-distance suggestions). */
bool ep_cfg__errs_full(const ep_cfg_errs *errs);

/* Integer storage of 1, 2, 4 or 8 bytes. */
uint64_t ep_cfg__load_u(const void *p, size_t size);
int64_t ep_cfg__load_s(const void *p, size_t size);
void ep_cfg__store_u(void *p, size_t size, uint64_t v);
void ep_cfg__store_s(void *p, size_t size, int64_t v);
uint64_t ep_cfg__umax(size_t size);
int64_t ep_cfg__smin(size_t size);
int64_t ep_cfg__smax(size_t size);

/* Effective bounds of a field: table bounds narrowed to the storage. */
void ep_cfg__ubounds(const ep_cfg_field *f, uint64_t *lo, uint64_t *hi);
void ep_cfg__sbounds(const ep_cfg_field *f, int64_t *lo, int64_t *hi);

/* Canonical text of a size ("64KiB", "1MB", "123B") and of a duration in
 * milliseconds ("1h30m", "500ms", "0s"); both parse back to the same value.
 * buf must hold EP_CFG__NUMBUF bytes. */
#define EP_CFG__NUMBUF 64
char *ep_cfg__fmt_size(uint64_t v, char *buf);
char *ep_cfg__fmt_duration(uint64_t ms, char *buf);

/* Names used in messages, docs and schema. */
const char *ep_cfg__type_name(const ep_cfg_field *f);

#endif
