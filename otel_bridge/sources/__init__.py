"""Where frames come from: live run sockets, the pass-through socket, recorded files."""
