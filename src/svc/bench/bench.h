/*
 * bench.h - `edgeplane bench`, the MQTT load generator.
 *
 * The generator drives many MQTT connections from a few threads (one epoll
 * loop each) against any MQTT 3.1.1/5.0 broker and reports sent and
 * delivered message rates, end-to-end latency percentiles and loss,
 * duplication and reordering per publisher. See bench/README.md.
 */
#ifndef EP_SVC_BENCH_BENCH_H
#define EP_SVC_BENCH_BENCH_H

/* ep_bench_main runs the bench subcommand. argv[0] is "bench"; the remaining
 * arguments are the options listed by `edgeplane bench --help`. Borrows argv.
 * Call from the main thread only: it starts and joins its own worker threads
 * and writes the report to stdout, errors to stderr.
 * Returns the process exit status: 0 on success, 1 when the run completed
 * but a connection failed or was closed by the broker, 2 on a usage error,
 * 3 when the broker could not be reached or refused the connection. */
int ep_bench_main(int argc, char **argv);

#endif
