"""test_sockopt.py - the socket options smtpd sets on accepted sessions.

TCP_NODELAY is read on smtpd's own socket, not inferred from timing: the
test (root) takes a duplicate of smtpd's descriptor with pidfd_getfd(2)
and asks the kernel. Without it every TLS session waited twice for the
client's delayed ACK (about 40 ms each; bench/README.md, issue 12).
"""

import ctypes
import os
import socket

from harness import PetrelCase, connect

SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438
LIBC = ctypes.CDLL(None, use_errno=True)


def socket_inodes(pid):
    """{inode: fd} of the sockets process pid holds."""
    out = {}
    base = "/proc/%d/fd" % pid
    for fd in os.listdir(base):
        try:
            target = os.readlink(os.path.join(base, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            out[int(target[8:-1])] = int(fd)
    return out


def tcp_inode(local_port, remote_port):
    """Inode of the 127.0.0.1 TCP socket local_port <- remote_port."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            lport = int(fields[1].split(":")[1], 16)
            rport = int(fields[2].split(":")[1], 16)
            if lport == local_port and rport == remote_port:
                return int(fields[9])
    return None


def steal_fd(pid, fd):
    """A duplicate of pid's descriptor fd, as a socket object."""
    pidfd = LIBC.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        raise OSError(ctypes.get_errno(), "pidfd_open")
    try:
        dup = LIBC.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if dup < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
    finally:
        os.close(pidfd)
    return socket.socket(fileno=dup)


class AcceptedSocketTest(PetrelCase):

    def server_side(self, client_sock):
        port = self.suite.submission_port
        inode = tcp_inode(port, client_sock.getsockname()[1])
        self.assertIsNotNone(inode, "no server socket in /proc/net/tcp")
        for pid in self.suite.pids_of("smtpd"):
            fd = socket_inodes(pid).get(inode)
            if fd is not None:
                return steal_fd(pid, fd)
        self.fail("no smtpd holds the session's socket")

    def test_nodelay(self):
        """An accepted session has TCP_NODELAY (an option of the socket,
        which STARTTLS does not change)."""
        if os.geteuid() != 0:
            self.skipTest("pidfd_getfd needs root")
        c = connect(self.suite, starttls=False)
        try:
            s = self.server_side(c.sock)
            try:
                self.assertEqual(s.getsockopt(socket.IPPROTO_TCP,
                                              socket.TCP_NODELAY), 1)
            finally:
                s.close()
        finally:
            c.quit()
