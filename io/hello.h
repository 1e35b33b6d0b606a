/*
 * hello.h - forward the preread bytes (the ClientHello and anything after
 * it) to the connected upstream exactly once, then start relaying.
 */
#ifndef SNISPLICE_IO_HELLO_H
#define SNISPLICE_IO_HELLO_H

#include "worker.h"

void hello_forward(struct worker *worker, struct connection *connection);

#endif
