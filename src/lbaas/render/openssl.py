"""Judge TLS cipher strings and protocol versions as HAProxy's OpenSSL does, through ctypes.

Key choice: HAProxy hands ``ciphers`` to ``SSL_CTX_set_cipher_list`` and ``ciphersuites`` to
``SSL_CTX_set_ciphersuites`` and refuses the configuration when either returns 0 (no cipher
left: ``FOO``, ``RC4-MD5`` in OpenSSL 3, ``DEFAULT:!ALL``); unknown names among known ones are
ignored. Calling the same functions of the same ``libssl.so.3`` (Debian's HAProxy and this
Python both link it) gives HAProxy's verdict. Python's ``ssl`` module has no
``set_ciphersuites``, hence ctypes for both. Versions: HAProxy refuses a bind or server whose
``ssl-min-ver``..``ssl-max-ver`` range holds no version the library was built with (SSLv3 is
not, in Debian's OpenSSL 3); ``ssl.HAS_*`` report exactly those build flags.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ssl
from functools import lru_cache

# Octavia's version names -> whether this OpenSSL can negotiate them at all.
BUILT_VERSIONS = {"SSLv3": ssl.HAS_SSLv3, "TLSv1": ssl.HAS_TLSv1, "TLSv1.1": ssl.HAS_TLSv1_1,
                  "TLSv1.2": ssl.HAS_TLSv1_2, "TLSv1.3": ssl.HAS_TLSv1_3}


class _Libraries:
    def __init__(self, libssl: ctypes.CDLL, libcrypto: ctypes.CDLL) -> None:
        libssl.TLS_method.restype = ctypes.c_void_p
        libssl.TLS_method.argtypes = []
        libssl.SSL_CTX_new.restype = ctypes.c_void_p
        libssl.SSL_CTX_new.argtypes = [ctypes.c_void_p]
        libssl.SSL_CTX_free.restype = None
        libssl.SSL_CTX_free.argtypes = [ctypes.c_void_p]
        for name in ("SSL_CTX_set_cipher_list", "SSL_CTX_set_ciphersuites"):
            getattr(libssl, name).restype = ctypes.c_int
            getattr(libssl, name).argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        libcrypto.ERR_clear_error.restype = None
        libcrypto.ERR_clear_error.argtypes = []
        self.ssl = libssl
        self.crypto = libcrypto

    def accepts(self, setter: str, value: str) -> bool:
        ctx = self.ssl.SSL_CTX_new(self.ssl.TLS_method())
        if not ctx:
            raise MemoryError("SSL_CTX_new failed")
        try:
            return bool(getattr(self.ssl, setter)(ctx, value.encode("ascii")))
        finally:
            self.ssl.SSL_CTX_free(ctx)
            # A refusal leaves errors on this thread's queue; Python's ssl must not see them.
            self.crypto.ERR_clear_error()


def _load(*names: str | None) -> ctypes.CDLL | None:
    for name in names:
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
    return None


@lru_cache(maxsize=1)
def _libraries() -> _Libraries | None:
    libssl = _load("libssl.so.3", ctypes.util.find_library("ssl"))
    libcrypto = _load("libcrypto.so.3", ctypes.util.find_library("crypto"))
    if libssl is None or libcrypto is None:
        return None
    return _Libraries(libssl, libcrypto)


def cipher_list_error(value: str) -> str | None:
    """Why ``SSL_CTX_set_cipher_list(value)`` (TLS 1.2 and below) fails, or None."""
    return _error("SSL_CTX_set_cipher_list", value, "selects no cipher")


def ciphersuites_error(value: str) -> str | None:
    """Why ``SSL_CTX_set_ciphersuites(value)`` (TLS 1.3) fails, or None."""
    return _error("SSL_CTX_set_ciphersuites", value, "names no cipher suite")


def _error(setter: str, value: str, reason: str) -> str | None:
    libs = _libraries()
    if libs is None:
        return "OpenSSL (libssl.so.3) is not available to check the ciphers"
    if not value.isascii() or "\0" in value:
        return "not an ASCII cipher string"
    if libs.accepts(setter, value):
        return None
    return f"{reason} the load balancer's OpenSSL ({ssl.OPENSSL_VERSION}) supports"


def supported_versions(versions: list[str]) -> list[str]:
    """The versions of ``versions`` this OpenSSL was built to negotiate."""
    return [v for v in versions if BUILT_VERSIONS.get(v)]


@lru_cache(maxsize=1024)
def cipher_names(value: str) -> frozenset[str]:
    """The TLS 1.2-and-below ciphers a cipher string names (empty if it names none).

    The list as ``SSL_CTX_set_cipher_list`` builds it, before the security level filters it at
    handshake time (``@SECLEVEL=0`` keeps what it would filter out).
    """
    if not value.isascii() or "\0" in value:
        return frozenset()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.set_ciphers(value)
    except ssl.SSLError:
        return frozenset()
    return frozenset(c["name"] for c in ctx.get_ciphers() if c.get("protocol") != "TLSv1.3")
