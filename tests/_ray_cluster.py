"""A two-node Ray cluster (head + one worker node, one CPU each) that listens on 127.0.0.1 only.

Run as a script, it prints the cluster's address and keeps the cluster up until its stdin closes, then
stops exactly the processes it started. ``ray start --node-ip-address=127.0.0.1`` cannot do this: Ray
replaces a loopback node address by the machine's network address and listens on every interface, except
in its single-machine mode, where ``ray start --address`` refuses to add a second node. Ray's own test
cluster (``ray.cluster_utils.Cluster``) in single-machine mode adds nodes on 127.0.0.1.

``listening_addresses(pid)`` lists the TCP addresses that a process tree listens on (read from /proc), so
a test can check that nothing listens beyond loopback.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(_children(p))
    return tree


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _addr(hex_addr: str) -> str:
    ip_hex, port_hex = hex_addr.split(":")
    raw = bytes.fromhex(ip_hex)
    if len(raw) == 4:
        ip = ipaddress.IPv4Address(raw[::-1])
    else:  # /proc/net/tcp6: four little-endian 32-bit words
        ip = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
        ip = ip.ipv4_mapped or ip
    return f"{ip}:{int(port_hex, 16)}"


def listening_addresses(pid: int) -> list[str]:
    """``ip:port`` of every TCP socket in LISTEN state held by ``pid`` or its descendants."""
    inodes = set().union(*(_socket_inodes(p) for p in process_tree(pid)))
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:  # 0A: LISTEN
                out.append(_addr(parts[1]))
    return out


def is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address.rsplit(":", 1)[0]).is_loopback


def main() -> None:
    # Before ray is imported (it reads them once); RAY_TMPDIR keeps sessions and the address file out of /tmp/ray.
    os.environ.update(LOOPBACK_ENV, RAY_TMPDIR=sys.argv[1])
    (Path(sys.argv[1]) / "ray").mkdir(parents=True, exist_ok=True)
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 200 * 1024**2}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        cluster.add_node(**node)
        cluster.wait_for_nodes()
        print(cluster.address, flush=True)
        sys.stdin.read()  # until the test closes our stdin
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
