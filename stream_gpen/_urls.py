"""URLs in messages: a user name and password shown as ``***``, and the proxy a request went
through named. An error message or a log is pasted into bug reports, and a password must not be
in it: a proxy's (``https_proxy=http://alice:pw@host:3128``), or a URL's own (``user:pw@``)."""
from __future__ import annotations

import os
import re
from urllib.parse import unquote

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:/{1,2}")  # (one slash: a misspelt proxy setting, said masked too)
_AUTHORITY_END = re.compile(r"[/?#\s]")  # (after the user info's "@": the host's end)
_PATH_START = re.compile(r"[/?#]")


def _user_info(url: str) -> tuple[int, int] | None:
    """Where the user info of ``url``'s leading ``scheme://user:password@`` lies (start, end:
    the "@"), or None. The scheme may be missing (urllib takes ``alice:pw@host:3128`` as a proxy).

    A password may hold "#", "?", "/" or an "@" (urllib takes ``http://alice:s3cr#t@host`` whole,
    and the last "@" before the host ends the user info), so the host ends at the first "/", "?",
    "#" or space after the first "@", and the user info at the last "@" before that. What comes
    after (a path or query with an "@", text after the URL) is left as it is; a "user info" with a
    space (text, not a URL), or a "/", "?" or "#" before any ":" (``http://host/a@b``: a path),
    is none.
    """
    scheme = _SCHEME.match(url)
    start = scheme.end() if scheme else 0
    first = url.find("@", start)
    if first < 0:
        return None
    end = _AUTHORITY_END.search(url, first + 1)
    at = url.rfind("@", start, end.start() if end else len(url))
    info = url[start:at]
    if any(c.isspace() for c in info):
        return None
    cut = _PATH_START.search(info)
    if cut and ":" not in info[:cut.start()]:
        return None
    return start, at


def _proxy_user_info(proxy: str) -> str | None:
    """The user info urllib sends to ``proxy`` (as its ``_parse_proxy`` reads it: up to the last
    "@" before the first "/" after the first "@", spaces and all), or None."""
    scheme = _SCHEME.match(proxy)
    rest = proxy[scheme.end():] if scheme else proxy
    if "@" not in rest:
        return None
    end = rest.find("/", rest.find("@"))
    info = rest[:end if end >= 0 else None].rpartition("@")[0]
    return info or None


def without_passwords(text: str, *urls: str) -> str:
    """``text`` with the user info (``alice:pw@``) of each of ``urls`` and of each proxy this
    process uses shown as ``***@``, and the password of each of ``urls`` alone as ``***`` too
    (an error quotes what it parsed of the URL: ``nonnumeric port: 'pw@host'``; a proxy's user
    info urllib splits off first); the rest as it is."""
    import urllib.request

    spans = [(url, _user_info(url)) for url in urls]
    own = [url[span[0]:span[1]] for url, span in spans if span is not None]
    proxies = [_proxy_user_info(proxy) for key, proxy in urllib.request.getproxies().items()
               if key != "no" and isinstance(proxy, str)]
    for info in dict.fromkeys(own + [p for p in proxies if p]):
        text = text.replace(info + "@", "***@")
    for info in dict.fromkeys(own):
        password = info.partition(":")[2]
        for said in dict.fromkeys((password, unquote(password))):
            if said:  # (as a whole word: "pw" in "pwd" is not it)
                text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(said)}(?![A-Za-z0-9])", "***", text)
    return text


def masked(url: str) -> str:
    """``url`` with the user info of its leading ``scheme://user:password@`` shown as ``***``
    (``http://alice:pw@host:3128`` -> ``http://***@host:3128``), the rest as it is; a proxy's
    user info that :func:`_user_info` cannot tell (a password with a space) as well."""
    span = _user_info(url)
    if span is not None:
        url = f"{url[:span[0]]}***{url[span[1]:]}"
    return without_passwords(url)


def proxy_for(url: str) -> tuple[str, str] | None:
    """``(proxy, variable)``: the proxy urllib sends ``url`` through and the environment variable
    it comes from (``https_proxy``), or None where it goes direct."""
    import urllib.parse
    import urllib.request

    try:
        parts = urllib.parse.urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
    except ValueError:
        return None
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    var = next((v for v in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")
                if os.environ.get(v, "").strip()), f"{scheme}_proxy")
    return proxy, var


def via_proxy(url: str) -> str:
    """`` through the proxy http://HOST:PORT (from $https_proxy)`` where urllib sends ``url``
    through one (so a dead or misspelt proxy is not taken for the server), else ""."""
    found = proxy_for(url)
    if found is None:
        return ""
    proxy, var = found
    odd = ""
    if proxy.lower().startswith("socks"):
        odd = "; SOCKS proxies are not supported: use an HTTP proxy, or download the file by hand"
    return f" through the proxy {masked(proxy)} (from ${var}{odd})"
