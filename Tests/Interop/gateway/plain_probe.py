"""What a client speaking plain HTTP gets from a port that serves only HTTPS."""
import socket


def plain_http_answer(https_url, path="/health", timeout=10):
    """Sends a plain HTTP GET to the host and port of `https_url` and returns every byte that
    comes back before the server closes (or resets) the connection."""
    host, port = https_url.removeprefix("https://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = b""
        try:
            while chunk := s.recv(4096):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer
