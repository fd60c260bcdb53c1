#ifndef TOOLCFG_CKEYUTILS_SHIM_H
#define TOOLCFG_CKEYUTILS_SHIM_H
#include <keyutils.h>
#include <stdlib.h>
// The special keyring ids are macros of negative casts; Swift imports them only as plain values.
static inline key_serial_t toolcfg_session_keyring(void) { return KEY_SPEC_SESSION_KEYRING; }
static inline key_serial_t toolcfg_process_keyring(void) { return KEY_SPEC_PROCESS_KEYRING; }
#endif
