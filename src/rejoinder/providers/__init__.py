"""Model providers: each module translates one upstream wire protocol to and from deltas."""
