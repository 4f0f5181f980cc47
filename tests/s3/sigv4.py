"""Recomputes a presigned S3 URL's SigV4 signature with botocore's own signer.

Reads {"url", "method", "headers", "accessKey", "secretKey", "region"} as JSON on stdin: the
URL as the server presigned it (perhaps altered by the test) and the headers a client would
send with it. Signs the same request at the URL's own X-Amz-Date and X-Amz-Expires and prints
{"given", "expected"}: the two are equal exactly when the store would accept the request.
"""

import datetime
import json
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main() -> None:
    given = json.load(sys.stdin)
    parts = urlsplit(given["url"])
    query = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    signed_at = datetime.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    botocore.auth.get_current_datetime = lambda: signed_at
    operation = [(k, v) for k, v in query if not k.startswith("X-Amz-")]
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(operation), ""))
    request = AWSRequest(method=given["method"], url=url, headers=given["headers"])
    signer = botocore.auth.S3SigV4QueryAuth(
        Credentials(given["accessKey"], given["secretKey"]),
        "s3",
        given["region"],
        expires=int(params["X-Amz-Expires"]),
    )
    signer.add_auth(request)
    expected = dict(parse_qsl(urlsplit(request.url).query))["X-Amz-Signature"]
    print(json.dumps({"given": params.get("X-Amz-Signature"), "expected": expected}))


if __name__ == "__main__":
    main()
