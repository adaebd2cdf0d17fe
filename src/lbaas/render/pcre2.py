"""Judge a regular expression exactly as HAProxy 2.6 does: with PCRE2 itself, through ctypes.

Key choice: Debian's HAProxy is built with ``USE_PCRE2=1 USE_PCRE2_JIT=1`` and links the same
``libpcre2-8.so.0`` this host has (a dependency of the haproxy package), so calling that library
gives HAProxy's verdict, not an approximation. A hand-written "conservative" validator would
both refuse patterns users rely on and miss PCRE2's own refusals (``\\u0041``, ``[\\w-.]``,
``a{70000}``, ``(a)\\1`` without auto-capture). This mirrors ``regex_comp()`` for an ACL
``-m reg`` pattern: ``pcre2_compile`` with ``PCRE2_NO_AUTO_CAPTURE`` (and ``PCRE2_CASELESS``
under ``-i``), then ``pcre2_jit_compile(PCRE2_JIT_COMPLETE)``, whose failure HAProxy also
refuses unless JIT is simply unavailable. No library, no verdict: ``regex_error`` says so and
the caller refuses the pattern (fail closed).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

PCRE2_CASELESS = 0x00000008
PCRE2_NO_AUTO_CAPTURE = 0x00002000
PCRE2_JIT_COMPLETE = 0x00000001
PCRE2_ERROR_JIT_BADOPTION = -45
LIBRARY_NAMES = ("libpcre2-8.so.0", ctypes.util.find_library("pcre2-8"))


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    for name in LIBRARY_NAMES:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.pcre2_compile_8.restype = ctypes.c_void_p
        lib.pcre2_compile_8.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                        ctypes.POINTER(ctypes.c_int),
                                        ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p]
        lib.pcre2_jit_compile_8.restype = ctypes.c_int
        lib.pcre2_jit_compile_8.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.pcre2_code_free_8.restype = None
        lib.pcre2_code_free_8.argtypes = [ctypes.c_void_p]
        lib.pcre2_get_error_message_8.restype = ctypes.c_int
        lib.pcre2_get_error_message_8.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
        return lib
    return None


def available() -> bool:
    return _library() is not None


def regex_error(pattern: str, caseless: bool = False) -> str | None:
    """Why HAProxy would refuse ``pattern`` as an ACL regex (PCRE2's own words), or None."""
    lib = _library()
    if lib is None:
        return "PCRE2 (libpcre2-8) is not available to check the regular expression"
    data = pattern.encode("utf-8", "surrogatepass")
    if b"\0" in data:
        return "NUL is not allowed in a regular expression"
    code, offset = ctypes.c_int(0), ctypes.c_size_t(0)
    flags = PCRE2_NO_AUTO_CAPTURE | (PCRE2_CASELESS if caseless else 0)
    compiled = lib.pcre2_compile_8(data, len(data), flags, ctypes.byref(code),
                                   ctypes.byref(offset), None)
    if not compiled:
        buffer = ctypes.create_string_buffer(256)
        lib.pcre2_get_error_message_8(code.value, buffer, len(buffer))
        return f"{buffer.value.decode(errors='replace')} at offset {offset.value}"
    try:
        jit = lib.pcre2_jit_compile_8(compiled, PCRE2_JIT_COMPLETE)
    finally:
        lib.pcre2_code_free_8(compiled)
    if jit and jit != PCRE2_ERROR_JIT_BADOPTION:
        return "PCRE2 cannot JIT-compile it"
    return None
