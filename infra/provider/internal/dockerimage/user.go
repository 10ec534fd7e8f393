package dockerimage

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// user is an image's USER resolved to numbers, as runc resolves it.
type user struct {
	uid, gid int
	groups   []int
	home     string
}

// resolveUser maps Docker's USER ("", "name", "uid", "name:group",
// "uid:gid", ...) to numbers using the image's /etc/passwd and /etc/group
// contents. A name must exist there; a number need not (then gid 0 and
// home "/", as Docker does). Without an explicit group the user also gets
// the supplementary groups that list it in /etc/group.
//
// Example: resolveUser("app", "app:x:10001:10001::/home/app:/bin/sh\n", "")
// gives uid 10001, gid 10001, home /home/app.
func resolveUser(spec, passwd, group string) (user, error) {
	u := user{home: "/"}
	name, grp, hasGroup := strings.Cut(strings.TrimSpace(spec), ":")
	userName := ""
	if name != "" {
		entry, found := findEntry(passwd, name, 7)
		switch {
		case found:
			uid, err1 := strconv.Atoi(entry[2])
			gid, err2 := strconv.Atoi(entry[3])
			if err1 != nil || err2 != nil {
				return u, fmt.Errorf("bad /etc/passwd entry for %q", name)
			}
			u.uid, u.gid, userName = uid, gid, entry[0]
			if entry[5] != "" {
				u.home = entry[5]
			}
		default:
			uid, err := strconv.Atoi(name)
			if err != nil || uid < 0 {
				return u, fmt.Errorf("user %q is not in the image's /etc/passwd", name)
			}
			u.uid = uid
		}
	}
	if hasGroup && grp != "" {
		if entry, found := findEntry(group, grp, 4); found {
			gid, err := strconv.Atoi(entry[2])
			if err != nil {
				return u, fmt.Errorf("bad /etc/group entry for %q", grp)
			}
			u.gid = gid
		} else if gid, err := strconv.Atoi(grp); err == nil && gid >= 0 {
			u.gid = gid
		} else {
			return u, fmt.Errorf("group %q is not in the image's /etc/group", grp)
		}
		return u, nil
	}
	if userName != "" {
		u.groups = memberOf(group, userName, u.gid)
	}
	return u, nil
}

// findEntry finds the colon-separated line whose name (field 0) or number
// (field 2) is key; fields is the entry's field count.
func findEntry(file, key string, fields int) ([]string, bool) {
	var byID []string
	for _, line := range strings.Split(file, "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) < fields || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] == key {
			return f, true
		}
		if byID == nil && f[2] == key {
			byID = f
		}
	}
	return byID, byID != nil
}

// memberOf lists the gids of the groups whose member list names userName,
// besides its primary gid.
func memberOf(group, userName string, primary int) []int {
	seen := map[int]bool{primary: true}
	var gids []int
	for _, line := range strings.Split(group, "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) < 4 {
			continue
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil || seen[gid] {
			continue
		}
		for _, m := range strings.Split(f[3], ",") {
			if m == userName {
				seen[gid] = true
				gids = append(gids, gid)
				break
			}
		}
	}
	sort.Ints(gids)
	return gids
}
