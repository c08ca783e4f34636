/*
 * fuzz_resources.c - libFuzzer harness for the connector's resource parser
 * (src/svc/connector/resource.c): arbitrary bytes, as `edgeplane apply`
 * reads them from a file and as the connector receives them from the
 * broker, split into documents and parsed.
 *
 * Besides memory safety it checks two properties: a document that parses
 * parses again, from its stored text, to a resource of the same kind and
 * name (what the connector does with what apply sent); and every
 * diagnostic is a non-empty, NUL-terminated line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc/connector/resource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ep_conn_res_list l = {0};
    ep_cfg_errs errs = {0};
    ep_conn_res_parse_multi("fuzz.yaml", (const char *)data, size, &l, &errs);
    for (size_t i = 0; i < errs.count; i++)
        if (errs.items[i].text == NULL || errs.items[i].text[0] == 0 ||
            strchr(errs.items[i].text, '\n') != NULL)
            abort();
    for (size_t i = 0; i < l.n; i++) {
        const ep_conn_res *r = l.items[i];
        ep_cfg_errs e2 = {0};
        ep_conn_res *again = NULL;
        if (ep_conn_res_parse("again", 1, r->text, r->text_len, &again, &e2) != EP_EOK ||
            again->kind != r->kind || strcmp(again->name, r->name) != 0)
            abort();
        ep_conn_res_free(again);
        ep_cfg_errs_fini(&e2);
    }
    ep_cfg_errs_fini(&errs);
    ep_conn_res_list_fini(&l);
    return 0;
}
