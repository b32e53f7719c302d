#!KAMAILIO
#
# presence-gateway interop tests: a Kamailio 5.6 presence server, written into a
# temporary folder by test/helpers/kamailio.ts. Placeholders @NAME@ are filled in there:
#   @PORT@ (UDP and TCP on 127.0.0.1), @DOMAIN@ (the presence domain, an alias of this
#   server), @DB_PATH@ (SQLite file made from Kamailio's own schema, WAL journal).
#
# Storage, and what survives a restart on the same database file:
#   - publications: the presentity table (the presence module always writes them to the
#     database; publ_cache only keeps an index in memory, rebuilt at start-up). They
#     survive until their Expires runs out.
#   - subscriptions: subs_db_mode 1 (write-through), so every new, refreshed or ended
#     subscription is in active_watchers at once and a restart, even after SIGKILL,
#     reloads them with their dialog (Call-ID, tags, CSeq): NOTIFYs continue in the
#     same dialog. db_update_period only matters for write-back (mode 2) and is unused.
#
# One UDP worker and one TCP worker: several processes writing one SQLite file lock
# it ("database is locked"); WAL lets the presence timer read while a worker writes.

debug=2
log_stderror=yes
log_prefix="pg-kam "

children=1
tcp_children=1
tcp_connection_lifetime=3605
auto_aliases=no
listen=udp:127.0.0.1:@PORT@
listen=tcp:127.0.0.1:@PORT@
alias="@DOMAIN@"
alias="127.0.0.1:@PORT@"
server_header="Server: pg-kamailio"
user_agent_header="User-Agent: pg-kamailio"
dns=no
rev_dns=no
use_dns_cache=no

loadmodule "kex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "db_sqlite.so"
loadmodule "presence.so"
loadmodule "presence_xml.so"
loadmodule "presence_dialoginfo.so"

# WAL: set once when test/helpers/kamailio.ts creates the file; SQLite stores the journal
# mode in the file, so every connection uses it. Not db_sqlite's db_set_journal_mode: it
# runs PRAGMA journal_mode=WAL on every new connection, and 5.6's db_sqlite sets no busy
# timeout, so children connecting at the same moment at start-up fail "database is locked"
# (and Kamailio exits).

modparam("tm", "fr_timer", 5000)

modparam("presence", "db_url", "sqlite:///@DB_PATH@")
modparam("presence", "server_address", "sip:127.0.0.1:@PORT@")
modparam("presence", "subs_db_mode", 1)
modparam("presence", "publ_cache", 1)
modparam("presence", "clean_period", 5)
modparam("presence", "max_expires", 3600)
modparam("presence", "min_expires", 0)

modparam("presence_xml", "db_url", "sqlite:///@DB_PATH@")
# no XCAP: every watcher is authorised
modparam("presence_xml", "force_active", 1)
modparam("presence_xml", "integrated_xcap_server", 0)

request_route {
	xlog("L_INFO", "pg-kam request $rm $ru from $si:$sp call-id $ci event $hdr(Event)\n");

	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}

	if (is_method("ACK")) {
		# ACKs of our own negative replies end in tm; nothing else to do with them
		t_check_trans();
		exit;
	}

	if (is_method("OPTIONS")) {
		sl_send_reply("200", "OK");
		exit;
	}

	if (!is_method("PUBLISH|SUBSCRIBE")) {
		append_to_reply("Allow: OPTIONS, PUBLISH, SUBSCRIBE\r\n");
		sl_send_reply("405", "Method Not Allowed");
		exit;
	}

	# only presentities of this server's domain (or its own address) are served
	if (!(uri == myself) || $rU == $null) {
		sl_send_reply("404", "Not Found");
		exit;
	}

	if (!t_newtran()) {
		sl_reply_error();
		exit;
	}

	if (is_method("PUBLISH")) {
		handle_publish();
	} else {
		handle_subscribe();
	}
	t_release();
	exit;
}

# NOTIFYs the presence module sends
event_route[tm:local-request] {
	xlog("L_INFO", "pg-kam local $rm $ru call-id $ci event $hdr(Event)\n");
}
