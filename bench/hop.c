/*
 * hop.c — what a wake-up between two CPUs costs on this machine: a one-byte ping-pong
 * over a socketpair between two threads pinned to CPUs A and B, the peer either
 * blocking in read(2) or polling. Prints one JSON line with the round-trip p50/p99 in
 * microseconds. Bounded: -n round trips (default 20000) and an alarm after 20 s.
 *
 *   hop A B [poll]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HOP_ROUNDS	20000
#define HOP_ALARM_S	20

struct hop {
	int fd;
	int cpu;
	int poll;
};

static int
hop_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static double
hop_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void *
hop_peer(void *arg)
{
	struct hop *h = arg;
	char b;

	hop_pin(h->cpu);
	for (int i = 0; i < HOP_ROUNDS; i++) {
		if (h->poll)
			while (recv(h->fd, &b, 1, MSG_DONTWAIT) != 1)
				;
		else if (read(h->fd, &b, 1) != 1)
			break;
		if (write(h->fd, &b, 1) != 1)
			break;
	}
	return NULL;
}

static int
hop_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	int sv[2], a, b;
	struct hop peer;
	pthread_t t;
	double *lat;
	char c = 'x';

	if (argc < 3) {
		fprintf(stderr, "usage: hop CPU_A CPU_B [poll]\n");
		return 2;
	}
	a = atoi(argv[1]);
	b = atoi(argv[2]);
	alarm(HOP_ALARM_S);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 ||
	    (lat = calloc(HOP_ROUNDS, sizeof(*lat))) == NULL)
		return 1;
	peer = (struct hop){sv[1], b, argc > 3 && strcmp(argv[3], "poll") == 0};
	if (pthread_create(&t, NULL, hop_peer, &peer) != 0 || hop_pin(a) != 0)
		return 1;
	for (int i = 0; i < HOP_ROUNDS; i++) {
		double t0 = hop_now_us();

		if (write(sv[0], &c, 1) != 1 || read(sv[0], &c, 1) != 1)
			return 1;
		lat[i] = hop_now_us() - t0;
	}
	pthread_join(t, NULL);
	qsort(lat, HOP_ROUNDS, sizeof(*lat), hop_cmp);
	printf("{\"cpu_a\": %d, \"cpu_b\": %d, \"peer\": \"%s\", \"rounds\": %d, "
	    "\"rtt_p50_us\": %.1f, \"rtt_p99_us\": %.1f}\n", a, b,
	    peer.poll ? "polls" : "blocks", HOP_ROUNDS, lat[HOP_ROUNDS / 2],
	    lat[HOP_ROUNDS * 99 / 100]);
	free(lat);
	return 0;
}
