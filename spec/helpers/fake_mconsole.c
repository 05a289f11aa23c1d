/*
 * fake_mconsole.c - a stand-in for UML's mconsole socket that answers
 * one request the way it is told to, well or badly, so that the uml
 * spec can check what vmlua makes of each reply.
 *
 *   fake-mconsole PATH MODE
 *
 * It binds a datagram socket at PATH, takes one request, checks that it
 * is a version-2 request (magic 0xcafebabe, a length that matches) and
 * answers:
 *   good      "echo: <command>"
 *   multi     the answer in three packets, "one " "two " "three"
 *   refuse    err = 1, "Unknown command"
 *   short     5 bytes, shorter than a reply's header
 *   badlen    a header claiming 600 bytes of text
 *   mismatch  a header claiming 10 bytes, with 4
 *   nonul     text whose last byte is not a NUL
 *   more      more = 7
 *   silent    nothing at all (the client times out)
 *   stale     no request taken: it exits at once, leaving the socket
 *             file behind with nobody bound to it
 * A request that is not a version-2 one is answered with err = 1 and
 * "bad request: ...".  It removes PATH when it ends (but for stale) and
 * gives up after 20 s.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct hdr {
	uint32_t a, b, len;
};

static int sock;
static struct sockaddr_un peer;
static socklen_t peerlen;

static void reply_raw(const void *p, size_t n)
{
	if (sendto(sock, p, n, 0, (struct sockaddr *)&peer, peerlen) < 0)
		perror("fake-mconsole: sendto");
}

/* One well-formed packet: err, more, the text and its NUL. */
static void reply(uint32_t err, uint32_t more, const char *text)
{
	char buf[sizeof(struct hdr) + 512];
	struct hdr h = { err, more, (uint32_t)strlen(text) + 1 };

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), text, h.len);
	reply_raw(buf, sizeof(h) + h.len);
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[sizeof(struct hdr) + 512 + 1], text[600];
	const char *mode;
	struct hdr h;
	ssize_t n;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: fake-mconsole PATH MODE\n");
		return 2;
	}
	mode = argv[2];
	strcpy(sa.sun_path, argv[1]);
	sock = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (sock < 0 || bind(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("fake-mconsole: bind");
		return 1;
	}
	if (!strcmp(mode, "stale"))
		return 0;
	alarm(20);
	peerlen = sizeof(peer);
	n = recvfrom(sock, req, sizeof(req), 0, (struct sockaddr *)&peer, &peerlen);
	if (n < 0) {
		perror("fake-mconsole: recvfrom");
		unlink(argv[1]);
		return 1;
	}
	memcpy(&h, req, sizeof(h));
	if ((size_t)n < sizeof(h) || h.a != 0xcafebabe || h.b != 2 || h.len != n - sizeof(h)) {
		reply(1, 0, "bad request: not a version-2 mconsole request");
	} else if (!strcmp(mode, "good")) {
		snprintf(text, sizeof(text), "echo: %.*s", (int)h.len, req + sizeof(h));
		reply(0, 0, text);
	} else if (!strcmp(mode, "multi")) {
		reply(0, 1, "one ");
		reply(0, 1, "two ");
		reply(0, 0, "three");
	} else if (!strcmp(mode, "refuse")) {
		reply(1, 0, "Unknown command");
	} else if (!strcmp(mode, "short")) {
		reply_raw("\0\0\0\0\0", 5);
	} else if (!strcmp(mode, "badlen")) {
		struct hdr b = { 0, 0, 600 };
		reply_raw(&b, sizeof(b));
	} else if (!strcmp(mode, "mismatch")) {
		char b[sizeof(struct hdr) + 4] = { 0 };
		struct hdr m = { 0, 0, 10 };
		memcpy(b, &m, sizeof(m));
		memcpy(b + sizeof(m), "abc", 4);
		reply_raw(b, sizeof(b));
	} else if (!strcmp(mode, "nonul")) {
		char b[sizeof(struct hdr) + 4];
		struct hdr m = { 0, 0, 4 };
		memcpy(b, &m, sizeof(m));
		memcpy(b + sizeof(m), "abcd", 4);
		reply_raw(b, sizeof(b));
	} else if (!strcmp(mode, "more")) {
		reply(0, 7, "x");
	} else if (!strcmp(mode, "silent")) {
		sleep(3);
	}
	unlink(argv[1]);
	return 0;
}
