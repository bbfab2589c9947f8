from gateway.addresses import client_address


def test_the_peer_is_the_client_without_a_trusted_proxy():
    # A client sending its own X-Forwarded-For does not choose its address.
    assert client_address("203.0.113.9", "1.2.3.4") == "203.0.113.9"
    assert client_address("203.0.113.9", "1.2.3.4", "10.0.0.0/8") == "203.0.113.9"


def test_behind_a_trusted_proxy_the_forwarded_address_counts():
    assert client_address("10.0.0.2", "198.51.100.7", "10.0.0.0/8") == "198.51.100.7"


def test_a_spoofed_left_entry_is_ignored():
    # The proxy appends what it saw; anything left of that came from the client.
    assert client_address("10.0.0.2", "6.6.6.6, 198.51.100.7", "10.0.0.0/8") == "198.51.100.7"


def test_chains_of_trusted_proxies_are_walked():
    got = client_address("127.0.0.1", "198.51.100.7, 10.0.0.5", "127.0.0.1, 10.0.0.0/8")
    assert got == "198.51.100.7"
