"""Bench-only middleware: each response says how much CPU its worker spent on it (``X-Bench-CPU-Us``), so the
load generator can print the workers' CPU per request type. First in the bench's MIDDLEWARE: it counts every
middleware and the view, not gunicorn's own HTTP parsing (the whole workers' CPU is printed too)."""

import time


class RequestCPUMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.process_time()
        response = self.get_response(request)
        response["X-Bench-CPU-Us"] = str(int((time.process_time() - start) * 1e6))
        return response
