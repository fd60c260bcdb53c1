#ifndef TOOLCFG_CARGON2_SHIM_H
#define TOOLCFG_CARGON2_SHIM_H
#include <argon2.h>
#endif
