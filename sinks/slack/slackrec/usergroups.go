package slackrec

import "net/http"

// UserGroupMembers is the method that lists a user group's members.
const UserGroupMembers = "usergroups.users.list"

// SetUserGroup makes usergroups.users.list answer members for group.
func (s *Server) SetUserGroup(group string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups == nil {
		s.groups = map[string][]string{}
	}
	s.groups[group] = append([]string(nil), members...)
}

// userGroupMembers answers usergroups.users.list as Slack does: the
// members, or no_such_subteam.
func (s *Server) userGroupMembers(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.call(UserGroupMembers, r, form)
	s.record(c)
	if s.fail(w, UserGroupMembers) {
		return
	}
	members, ok := s.groups[form.Get("usergroup")]
	if !ok {
		writeJSON(w, map[string]any{"ok": false, "error": "no_such_subteam"})
		return
	}
	writeJSON(w, map[string]any{"ok": true, "users": members})
}
