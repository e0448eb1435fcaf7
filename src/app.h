/*
 * app.h - what handlers may use: the parts of the running server below the
 * router (configuration now; store, crypto and audit as they arrive). One
 * instance per process, created by main.c and passed down, never global.
 */
#ifndef NOTESD_APP_H
#define NOTESD_APP_H

#include "config.h"

struct app {
    const struct config *cfg;
};

#endif
