"""The copyable examples of the API page: the vendor's own samples with the studio's base URL
and a token placeholder (never a real token: the page would keep it in the browser's cache)."""

TOKEN_PLACEHOLDER = "$KINOVI_STUDIO_TOKEN"

CURL_CREATE = """curl -X POST {base}/jobs/createTask \\
  -H "Authorization: Bearer {token}" \\
  -H "Content-Type: application/json" \\
  -H "Idempotency-Key: $(uuidgen)" \\
  -d '{{
    "model": "seedance-20",
    "inputs": {{
      "prompt": "A serene mountain landscape at golden hour, cinematic camera slowly panning right",
      "duration": "5",
      "aspectRatio": "16:9"
    }}
  }}'"""

CURL_STATUS = """curl "{base}/jobs/recordInfo?taskId=gen_…" \\
  -H "Authorization: Bearer {token}\""""

CURL_LIST = """curl "{base}/jobs?status=success&creator=me&limit=20" \\
  -H "Authorization: Bearer {token}\""""

PYTHON = """import os
import time

import requests

BASE_URL = "{base}"  # Kinovi's is https://kinovi.ai/api/v1
HEADERS = {{"Authorization": f"Bearer {{os.environ['KINOVI_STUDIO_TOKEN']}}"}}

created = requests.post(
    f"{{BASE_URL}}/jobs/createTask",
    headers=HEADERS,
    json={{
        "model": "seedance-20",
        "inputs": {{"prompt": "A paper boat on a rain-soaked street", "duration": "5"}},
    }},
    timeout=30,
)
created.raise_for_status()
task_id = created.json()["taskId"]

while True:
    info = requests.get(
        f"{{BASE_URL}}/jobs/recordInfo", headers=HEADERS, params={{"taskId": task_id}}, timeout=30
    ).json()
    if info["status"] in ("success", "fail"):
        break
    time.sleep(4)  # Kinovi recommends polling every 3 to 5 seconds

print(info["status"], info["output"] or info["error"])
"""


def examples(base: str) -> list[dict]:
    values = {"base": base, "token": TOKEN_PLACEHOLDER}
    return [
        {
            "id": "curl-create",
            "title": "Create a video (curl)",
            "code": CURL_CREATE.format(**values),
        },
        {"id": "curl-status", "title": "Ask about it (curl)", "code": CURL_STATUS.format(**values)},
        {"id": "curl-list", "title": "List tasks (curl)", "code": CURL_LIST.format(**values)},
        {"id": "python", "title": "Create and wait (Python)", "code": PYTHON.format(**values)},
    ]
