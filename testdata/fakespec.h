/* fakespec.h: the settings string shared by the fake libraries
 * (NSS_FAKE_NVML, NSS_FAKE_CUDA): comma-separated "key" or "key=value". */
#ifndef NSS_FAKESPEC_H
#define NSS_FAKESPEC_H

#include <string.h>

/* setting returns the value of key in spec ("" for a bare key), or NULL
 * when spec does not name it. */
static const char *setting(const char *spec, const char *key)
{
	size_t n = strlen(key);
	const char *p = spec;
	while (p && *p) {
		if (strncmp(p, key, n) == 0 && (p[n] == '=' || p[n] == ',' || p[n] == '\0'))
			return p[n] == '=' ? p + n + 1 : p + n;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return NULL;
}

#endif
