"""The address rules of a fetch by URL, and the allow-list that lifts them for named hosts."""

import pytest

from rag_pipeline.core.sources.addresses import AllowList, AllowListError, refusal


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.0.1", "private"),
        ("10.255.255.254", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.1", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("febf::1", "link-local"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("fc00::1", "private"),
        ("100.64.0.1", "not globally routable"),  # shared address space (carrier-grade NAT)
        ("::ffff:127.0.0.1", "loopback (as ::ffff:127.0.0.1)"),
        ("::ffff:10.1.2.3", "private (as ::ffff:10.1.2.3)"),
        ("2002:7f00:1::", "loopback (as 2002:7f00:1::)"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local (as 64:ff9b::a9fe:a9fe)"),  # NAT64 of 169.254.169.254
    ],
)
def test_non_global_addresses_are_refused_with_their_kind(address: str, kind: str) -> None:
    assert refusal(address) == kind


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"],
)
def test_global_addresses_are_fetched(address: str) -> None:
    assert refusal(address) is None


def test_the_allow_list_matches_host_and_host_port() -> None:
    allow = AllowList.parse(" 127.0.0.1:8080, docs.internal ,[::1]:9000,10.0.0.5, Wiki.Corp. ")
    assert allow.permits("127.0.0.1", 8080)
    assert not allow.permits("127.0.0.1", 8081)  # the port is part of the entry
    assert not allow.permits("127.0.0.2", 8080)
    assert not allow.permits("localhost", 8080)  # a name is not the address it resolves to
    assert allow.permits("docs.internal", 80) and allow.permits("docs.internal", 8443)
    assert allow.permits("DOCS.internal.", 80)
    assert not allow.permits("evil.docs.internal", 80)
    assert allow.permits("::1", 9000) and allow.permits("0:0::1", 9000)
    assert not allow.permits("::1", 9001)
    assert allow.permits("10.0.0.5", 1234)
    assert allow.permits("wiki.corp", 443)
    assert AllowList.parse("münchen.de").permits("xn--mnchen-3ya.de", 80)  # as URLs resolve it
    assert not AllowList.parse("").permits("127.0.0.1", 80)


@pytest.mark.parametrize("entry", ["host:port", "host:0", "host:70000", ":8080", "a@b", "[::1]x"])
def test_an_allow_list_entry_that_names_no_host_is_refused(entry: str) -> None:
    with pytest.raises(AllowListError):
        AllowList.parse(entry)
