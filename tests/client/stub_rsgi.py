"""A tiny RSGI app for the load generator's tests (granian --interface rsgi, one worker).

  /ok        {"code":0,...}
  /fail      400 {"code":1001,...}
  /sleep50   waits 50 ms, then {"code":0,...}
  /stats     the most requests seen in flight at once on one connection, the
             connections seen and the requests answered since /reset
  /reset     forgets those
"""
import asyncio
import json

OK = b'{"code":0,"msg":"ok","data":null}'
FAIL = b'{"code":1001,"msg":"invalid parameter"}'
HEADERS = [("content-type", "application/json")]
_stats = {"in_flight": {}, "max_in_flight": 0, "connections": set(), "requests": 0}


async def app(scope, proto):
    if scope.proto != "http":
        return
    await proto()
    path = scope.path
    if path == "/stats":
        body = json.dumps({"code": 0, "msg": "ok", "data": {
            "max_in_flight": _stats["max_in_flight"], "connections": len(_stats["connections"]),
            "requests": _stats["requests"]}}).encode()
        proto.response_bytes(200, HEADERS, body)
        return
    if path == "/reset":
        _stats.update(in_flight={}, max_in_flight=0, connections=set(), requests=0)
        proto.response_bytes(200, HEADERS, OK)
        return
    client = scope.client
    flights = _stats["in_flight"]
    flights[client] = flights.get(client, 0) + 1
    _stats["max_in_flight"] = max(_stats["max_in_flight"], flights[client])
    _stats["connections"].add(client)
    if path == "/sleep50":
        await asyncio.sleep(0.05)
    flights[client] -= 1
    _stats["requests"] += 1
    if path == "/fail":
        proto.response_bytes(400, HEADERS, FAIL)
    else:
        proto.response_bytes(200, HEADERS, OK)
