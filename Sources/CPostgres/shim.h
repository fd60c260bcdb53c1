#ifndef TOOLCFG_CPOSTGRES_SHIM_H
#define TOOLCFG_CPOSTGRES_SHIM_H
#include <libpq-fe.h>
#endif
