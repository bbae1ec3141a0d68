"""Review of hunt 29 (weights29b): a ValueError of the URL is not blamed on the proxy.

With a proxy set, every ValueError (or InvalidURL) from urllib was said as "the proxy ... is not a
usable proxy URL" with a hint to correct $https_proxy, even where the proxy was a good one and the
URL was refused (a mirror's URL with a space in it). Now the proxy is named only where urllib
refuses the proxy setting itself; else the failure is said as before, no proxy hint.

No test reaches the internet: the URL is refused before any connection."""
from __future__ import annotations

import pytest

from stream_gpen import weights
from stream_gpen.errors import DownloadError
from stream_gpen.weights import ensure_weights
import tests.test_weights as _tw
from tests.test_weights29 import SECRET, _closed_port
import tests.test_weights29 as _tw29

# test_weights' fixture: a private cache and checkout (autouse)
dirs = _tw.dirs
proxy_env = _tw29.proxy_env


def test_a_bad_url_through_a_good_proxy_is_not_blamed_on_the_proxy(dirs, proxy_env):
    proxy_env("HTTPS_PROXY", f"http://alice:{SECRET}@127.0.0.1:{_closed_port()}")
    wf = _tw.make("https://weights.invalid/a b.pth")
    with pytest.raises(DownloadError) as info:
        ensure_weights(wf, progress=False)
    message, hint = str(info.value), info.value.hint or ""
    assert "InvalidURL" in message and "control characters" in message, message
    assert "not a usable proxy URL" not in message, message
    assert "$HTTPS_PROXY" not in hint, hint
    assert SECRET not in message + hint
    assert info.value.exit_code == 3


@pytest.mark.parametrize("proxy, unusable", [
    ("http:/127.0.0.1:3128", True),
    ("http://127.0.0.1:notaport", True),
    ("http://127.0.0.1:99999", True),
    ("http://alice:pw@127.0.0.1:3128", False),
    ("127.0.0.1:3128", False),  # (no scheme: urllib takes it)
    ("http://[::1]:3128", False),
])
def test_which_proxy_settings_urllib_refuses(proxy, unusable):
    assert weights._unusable_proxy(proxy) is unusable
