"""Python side of avsepd: numpy signal reference, fixture generation and (later) separator training."""
