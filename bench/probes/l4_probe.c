/*
 * A minimal L4 proxy in C, to measure what the kernel interface costs, apart from
 * evio: not part of the product, not run by the tests. bench/probes/l4_probe.py
 * builds it and measures it against HAProxy and tcp-proxy.
 *
 *   l4_probe PORT BACKEND_PORT MODE
 *
 * MODE says how replies are sent (reads are always level-triggered epoll + read(2)):
 *   now          send(2) as soon as a read is done (what evio and HAProxy do);
 *   after-reads  send(2) for every connection after the wait's reads are done;
 *   uring        the wait's sends in one io_uring_enter, MSG_DONTWAIT, so that every
 *                send completes during the submit (nothing waits in the ring);
 *   ring         no epoll at all: multishot accept, multishot recv into a provided
 *                buffer ring, the sends batched into the next io_uring_enter.
 *
 * Loopback and 127.0.0.1 only; a short send or a failure closes the pair (a probe, not
 * a proxy).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536
#define CHUNK 16384
enum mode { NOW, AFTER_READS, URING, RING };

static int peer[MAXFD];
static unsigned gen[MAXFD];
static struct io_uring ring;
static struct sockaddr_in backend;

static void close_pair(int fd) {
  int p = peer[fd];
  if (p > 0) { peer[p] = 0; gen[p]++; close(p); }
  peer[fd] = 0; gen[fd]++; close(fd);
}

static struct io_uring_sqe *sqe(void) {
  struct io_uring_sqe *s = io_uring_get_sqe(&ring);
  if (!s) { io_uring_submit(&ring); s = io_uring_get_sqe(&ring); }
  return s;
}

/* ---- epoll modes ---- */

static char *held[MAXFD]; /* a reply held for the end of the wait, per destination */
static int held_len[MAXFD];
static int queue[MAXFD], queued;

static int flush_one(int to) {
  int n = held_len[to];
  held_len[to] = 0;
  return send(to, held[to], n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static int run_epoll(int lfd, enum mode mode) {
  int ep = epoll_create1(0), one = 1;
  struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event evs[256];
  static char buf[CHUNK];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (c < 0) continue;
        int b = socket(AF_INET, SOCK_STREAM, 0);
        if (c >= MAXFD || b >= MAXFD || connect(b, (void *)&backend, sizeof backend)) {
          close(c); close(b); continue;
        }
        fcntl(b, F_SETFL, O_NONBLOCK);
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, 4);
        setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, 4);
        peer[c] = b; peer[b] = c;
        if (!held[c]) held[c] = malloc(CHUNK);
        if (!held[b]) held[b] = malloc(CHUNK);
        struct epoll_event e1 = { .events = EPOLLIN, .data.fd = c }, e2 = { .events = EPOLLIN, .data.fd = b };
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &e1);
        epoll_ctl(ep, EPOLL_CTL_ADD, b, &e2);
        continue;
      }
      if (!peer[fd]) continue;
      int to = peer[fd];
      /* What is held for `to` leaves room for a whole read. */
      if (held_len[to] && flush_one(to)) { close_pair(fd); continue; }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r < 0 && errno == EAGAIN) continue;
      if (r <= 0) { close_pair(fd); continue; }
      if (mode == NOW) {
        if (send(to, buf, r, MSG_NOSIGNAL) != r) close_pair(fd);
        continue;
      }
      memcpy(held[to], buf, r);
      held_len[to] = r;
      queue[queued++] = to;
      if (mode == URING) {
        struct io_uring_sqe *s = sqe();
        io_uring_prep_send(s, to, held[to], r, MSG_NOSIGNAL | MSG_DONTWAIT);
        io_uring_sqe_set_data64(s, ((unsigned long long)gen[to] << 32) | (unsigned)to);
      }
    }
    if (mode == AFTER_READS) {
      for (int j = 0; j < queued; j++)
        if (peer[queue[j]] && held_len[queue[j]] && flush_one(queue[j])) close_pair(queue[j]);
    } else if (mode == URING && queued) {
      io_uring_submit(&ring);
      struct io_uring_cqe *cqe;
      unsigned head, k = 0;
      io_uring_for_each_cqe(&ring, head, cqe) {
        k++;
        int to = (int)(cqe->user_data & 0xffffffff);
        unsigned g = cqe->user_data >> 32;
        if (g != gen[to]) continue;
        if (cqe->res != held_len[to]) close_pair(to);
        else held_len[to] = 0;
      }
      io_uring_cq_advance(&ring, k);
    }
    queued = 0;
  }
  return 0;
}

/* ---- the all-ring mode ---- */

#define NBUF 4096
#define BGID 1
enum { T_ACCEPT = 1, T_CONNECT, T_RECV, T_SEND };
static struct io_uring_buf_ring *br;
static char *bufs;

static unsigned long long ud(int t, int fd, int bid, unsigned g) {
  return ((unsigned long long)t << 60) | ((unsigned long long)(fd & 0xfffff) << 40) |
         ((unsigned long long)(bid & 0xffff) << 24) | (g & 0xffffff);
}

static void arm_recv(int fd) {
  struct io_uring_sqe *s = sqe();
  io_uring_prep_recv_multishot(s, fd, NULL, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = BGID;
  io_uring_sqe_set_data64(s, ud(T_RECV, fd, 0, gen[fd]));
}

static void recycle(int bid) {
  io_uring_buf_ring_add(br, bufs + (size_t)bid * CHUNK, CHUNK, bid, io_uring_buf_ring_mask(NBUF), 0);
  io_uring_buf_ring_advance(br, 1);
}

static void arm_accept(int lfd) {
  struct io_uring_sqe *s = sqe();
  io_uring_prep_multishot_accept(s, lfd, NULL, NULL, 0);
  io_uring_sqe_set_data64(s, ud(T_ACCEPT, lfd, 0, 0));
}

static int run_ring(int lfd) {
  int one = 1;
  bufs = aligned_alloc(4096, (size_t)NBUF * CHUNK);
  br = mmap(NULL, NBUF * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  io_uring_buf_ring_init(br);
  struct io_uring_buf_reg reg = { .ring_addr = (unsigned long)br, .ring_entries = NBUF, .bgid = BGID };
  if (io_uring_register_buf_ring(&ring, &reg, 0)) { perror("io_uring_register_buf_ring"); return 1; }
  for (int i = 0; i < NBUF; i++)
    io_uring_buf_ring_add(br, bufs + (size_t)i * CHUNK, CHUNK, i, io_uring_buf_ring_mask(NBUF), i);
  io_uring_buf_ring_advance(br, NBUF);
  arm_accept(lfd);
  for (;;) {
    io_uring_submit_and_wait(&ring, 1);
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      n++;
      unsigned long long u = cqe->user_data;
      int t = u >> 60, fd = (u >> 40) & 0xfffff, res = cqe->res;
      unsigned g = u & 0xffffff;
      if ((t == T_RECV || t == T_CONNECT) && g != (gen[fd] & 0xffffff)) {
        if (t == T_RECV && (cqe->flags & IORING_CQE_F_BUFFER)) recycle(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        continue;
      }
      if (t == T_ACCEPT) {
        if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(lfd);
        if (res < 0) continue;
        int c = res, b = socket(AF_INET, SOCK_STREAM, 0);
        if (c >= MAXFD || b >= MAXFD) { close(c); close(b); continue; }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, 4);
        setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, 4);
        peer[c] = b; peer[b] = c;
        struct io_uring_sqe *s = sqe();
        io_uring_prep_connect(s, b, (void *)&backend, sizeof backend);
        io_uring_sqe_set_data64(s, ud(T_CONNECT, b, 0, gen[b]));
      } else if (t == T_CONNECT) {
        if (res < 0) { close_pair(fd); continue; }
        arm_recv(fd);
        arm_recv(peer[fd]);
      } else if (t == T_RECV) {
        if (res == -ENOBUFS) { arm_recv(fd); continue; }
        if (res <= 0) { close_pair(fd); continue; }
        int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (!(cqe->flags & IORING_CQE_F_MORE)) arm_recv(fd);
        struct io_uring_sqe *s = sqe();
        io_uring_prep_send(s, peer[fd], bufs + (size_t)bid * CHUNK, res, MSG_NOSIGNAL);
        /* The low bits carry the length: a short send closes the pair. */
        io_uring_sqe_set_data64(s, ud(T_SEND, peer[fd], bid, res));
      } else if (t == T_SEND) {
        recycle((u >> 24) & 0xffff);
        if (res != (int)g && peer[fd]) close_pair(fd);
      }
    }
    io_uring_cq_advance(&ring, n);
  }
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: l4_probe PORT BACKEND_PORT now|after-reads|uring|ring\n"); return 2; }
  enum mode mode = !strcmp(argv[3], "now") ? NOW : !strcmp(argv[3], "after-reads") ? AFTER_READS
                 : !strcmp(argv[3], "uring") ? URING : !strcmp(argv[3], "ring") ? RING : -1;
  if ((int)mode < 0) { fprintf(stderr, "l4_probe: unknown mode %s\n", argv[3]); return 2; }
  backend.sin_family = AF_INET;
  backend.sin_port = htons(atoi(argv[2]));
  backend.sin_addr.s_addr = htonl(0x7f000001);
  if (mode == URING || mode == RING) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
    if (mode == RING) p.flags |= IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(1024, &ring, &p)) { perror("io_uring_queue_init_params"); return 1; }
  }
  int one = 1, lfd = socket(AF_INET, SOCK_STREAM | (mode == RING ? 0 : SOCK_NONBLOCK), 0);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, 4);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])), .sin_addr.s_addr = htonl(0x7f000001) };
  if (bind(lfd, (void *)&a, sizeof a) || listen(lfd, 1024)) { perror("listen"); return 1; }
  return mode == RING ? run_ring(lfd) : run_epoll(lfd, mode);
}
