# The token layer's one exception family. Inside firmware/tokens a failure raises
# TokenError(reason); TokenVerifier turns it into a Verdict at its boundary, so callers
# (the app) get a result object with a reason code, never an exception.


class TokenError(Exception):
    def __init__(self, reason, detail=""):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail
