"""test_reuse.py - several messages on one connection.

Applications that keep their connection (framework mailers with a kept
transport, queue workers) send the next message as soon as the last one
is acknowledged. When smtpd had already read the whole next message by
the time the previous commit's reply went out, that message waited on the
commit list for the event loop's one-second timer: every such 250 came a
second late (bench/README.md, issue 12). Here the client sends two whole
transactions in one write (it does not wait for the 354, which smtpd
allows), so the second is always read during the first one's commit.

The check is a bound on a delay that is either about a second (the timer)
or a few milliseconds; it is not a speed goal.
"""

import time

from harness import PetrelCase, connect, login_plain, make_message, unique

ROUNDS = 3


class ReuseTest(PetrelCase):

    def test_next_message_not_held_for_the_timer(self):
        user, pw = self.ensure_user()
        c = connect(self.suite)
        login_plain(c, user, pw)
        try:
            for i in range(ROUNDS):
                toks = [unique("reuse%d" % i) for _ in range(2)]
                blob = b""
                for tok in toks:
                    blob += (b"MAIL FROM:<app@example.com>\r\n"
                             b"RCPT TO:<rcpt@example.org>\r\nDATA\r\n" +
                             make_message(tok) + b".\r\n")
                c.sock.sendall(blob)
                queued = []
                for _ in range(2):
                    for want in (250, 250, 354, 250):
                        code, text = c.getreply()
                        self.assertEqual(code, want, text)
                    queued.append(time.monotonic())
                gap = queued[1] - queued[0]
                self.assertLess(gap, 0.5, "round %d: the second 250 came "
                                "%.3f s after the first" % (i, gap))
                self.wait_arrival(toks[1])
        finally:
            c.quit()
