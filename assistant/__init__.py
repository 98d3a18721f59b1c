"""One conversation turn: parse the request, retrieve, rerank, explain, reply."""
