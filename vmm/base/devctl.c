/* devctl: what other threads want of a device's I/O thread (active, paused, exit), handed over
 * under a lock with a generation number the I/O thread acknowledges. */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvmini/devctl.h"
#include "kvmini/host.h"

int devctl_init(struct devctl *c, int efd_flags)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (pthread_mutex_init(&c->lock, NULL))
		return -ENOMEM;
	if (pthread_cond_init(&c->cond, NULL)) {
		pthread_mutex_destroy(&c->lock);
		return -ENOMEM;
	}
	c->fd = eventfd(0, EFD_CLOEXEC | efd_flags);
	if (c->fd < 0) {
		int err = errno;
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->lock);
		return -err;
	}
	c->ready = true;
	return 0;
}

void devctl_fini(struct devctl *c)
{
	if (!c->ready)
		return;
	close(c->fd);
	c->fd = -1;
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	c->ready = false;
}

bool devctl_lock(struct devctl *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->alive)
		return true;
	pthread_mutex_unlock(&c->lock);
	return false;
}

uint64_t devctl_publish(struct devctl *c)
{
	uint64_t gen = ++c->gen;
	pthread_mutex_unlock(&c->lock);
	/* Cannot fail for an eventfd that is not about to overflow: the thread drains it. */
	if (eventfd_write(c->fd, 1) < 0) {
	}
	return gen;
}

void devctl_wait(struct devctl *c, uint64_t gen)
{
	pthread_mutex_lock(&c->lock);
	while (c->alive && c->done_gen < gen)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

bool devctl_acked(struct devctl *c, uint64_t gen)
{
	pthread_mutex_lock(&c->lock);
	bool done = !c->alive || c->done_gen >= gen;
	pthread_mutex_unlock(&c->lock);
	return done;
}

uint64_t devctl_want(struct devctl *c, bool active, bool exit_thread, uint64_t features)
{
	if (!devctl_lock(c))
		return 0;
	c->want_active = active;
	c->want_exit = c->want_exit || exit_thread;
	c->want_features = features;
	return devctl_publish(c);
}

void devctl_pause(struct devctl *c, bool paused)
{
	if (!devctl_lock(c))
		return;
	c->want_paused = paused;
	devctl_wait(c, devctl_publish(c));
}

void devctl_drain(struct devctl *c)
{
	host_eventfd_drain(c->fd);
}

void devctl_snapshot(struct devctl *c, struct devctl_state *s)
{
	pthread_mutex_lock(&c->lock);
	s->run = c->want_active && !c->want_exit;
	s->stop = c->want_exit;
	s->paused = c->want_paused;
	s->features = c->want_features;
	s->gen = c->gen;
	pthread_mutex_unlock(&c->lock);
}

void devctl_ack(struct devctl *c, uint64_t gen)
{
	pthread_mutex_lock(&c->lock);
	c->done_gen = gen;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

void devctl_gone(struct devctl *c)
{
	pthread_mutex_lock(&c->lock);
	c->alive = false;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}
