/*
 * webhookd_cred.c - each application's own webhook endpoint, from the
 * credential store (relayctl user set NAME --webhook URL). Placeholder
 * until the credential store holds endpoints: none.
 */
#include "webhookd.h"

const struct wh_endpoint *
webhookd_user_endpoint(const char *user)
{
	(void)user;
	return NULL;
}
