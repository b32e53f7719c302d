#!KAMAILIO
#
# presence-gateway: a Kamailio 5.6 presence server for the interop tests and the benchmark,
# written into a temporary folder by test/helpers/kamailio.ts. Placeholders @NAME@ are
# filled in there:
#   @PORT@ (UDP and TCP on 127.0.0.1), @DOMAIN@ (the presence domain, an alias of this
#   server), @DB_PATH@ (SQLite file made from Kamailio's own schema, WAL journal), and the
#   sizing (KamailioTuning: INTEROP_TUNING for the tests, BENCH_TUNING for the benchmark,
#   where each choice is explained): @CHILDREN@ (UDP and TCP workers), @SUBS_DB_MODE@,
#   @DB_UPDATE_PERIOD@, @CLEAN_PERIOD@; shared and private memory are -m / -M.
#
# Storage, and what survives a restart on the same database file:
#   - publications: the presentity table (the presence module always writes them to the
#     database; publ_cache only keeps an index in memory, rebuilt at start-up). They
#     survive until their Expires runs out.
#   - subscriptions: subs_db_mode 1 (write-through), so every new, refreshed or ended
#     subscription is in active_watchers at once and a restart, even after SIGKILL,
#     reloads them with their dialog (Call-ID, tags, CSeq): NOTIFYs continue in the
#     same dialog. db_update_period then only paces the sweep of expired subscriptions.
#
# SQLite connection. Every new SUBSCRIBE writes twice in the worker that handles it: its
# authorisation row (watchers table, in every subs_db_mode) and its dialog (active_watchers).
# 5.6's db_sqlite sets no busy timeout (db_set_busy_timeout came in 5.8), so two processes
# writing at once fail at once with "database is locked" and the SUBSCRIBE gets a 500; and
# SQLite's default synchronous=FULL fsyncs every commit (about 5 ms on this disk). The first
# request each worker handles therefore runs PRAGMA busy_timeout and synchronous=NORMAL
# through sqlops on the same db_url: Kamailio's database layer pools connections by URL per
# process, so that is presence's own connection. WAL + synchronous=NORMAL is what the
# gateway's SQLite store uses; a commit survives a crash of the process, not of the machine.
# Timer processes keep the defaults (they write rarely: expiry sweeps, timed-out NOTIFYs).
# https://www.sqlite.org/pragma.html#pragma_busy_timeout, #pragma_synchronous

debug=2
log_stderror=yes
log_prefix="pg-kam "

children=@CHILDREN@
tcp_children=@CHILDREN@
tcp_connection_lifetime=3605
# UDP receive buffer up to 4 MB (default probe limit 256 KB; the kernel caps it at
# net.core.rmem_max): a burst of NOTIFY responses waits in the socket while the workers are
# busy instead of being dropped (the bench's SIPp uses 4 MB too)
maxbuffer=4194304
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
loadmodule "sqlops.so"

# WAL: set once when test/helpers/kamailio.ts creates the file; SQLite stores the journal
# mode in the file, so every connection uses it. Not db_sqlite's db_set_journal_mode: it
# runs PRAGMA journal_mode=WAL on every new connection, and 5.6's db_sqlite sets no busy
# timeout, so children connecting at the same moment at start-up fail "database is locked"
# (and Kamailio exits).

modparam("tm", "fr_timer", 5000)

modparam("sqlops", "sqlcon", "pdb=>sqlite:///@DB_PATH@")

modparam("presence", "db_url", "sqlite:///@DB_PATH@")
modparam("presence", "server_address", "sip:127.0.0.1:@PORT@")
modparam("presence", "subs_db_mode", @SUBS_DB_MODE@)
modparam("presence", "db_update_period", @DB_UPDATE_PERIOD@)
modparam("presence", "publ_cache", 1)
modparam("presence", "clean_period", @CLEAN_PERIOD@)
modparam("presence", "max_expires", 3600)
modparam("presence", "min_expires", 0)

modparam("presence_xml", "db_url", "sqlite:///@DB_PATH@")
# no XCAP: every watcher is authorised
modparam("presence_xml", "force_active", 1)
modparam("presence_xml", "integrated_xcap_server", 0)

request_route {
	route(DB_TUNE);

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

# Responses (to NOTIFYs) reach a worker without request_route: tune its connection there too.
reply_route {
	route(DB_TUNE);
}

# Once per worker process ($var lives in the process), on presence's own SQLite connection
# (see "SQLite connection" above); logged so a run shows it took effect.
route[DB_TUNE] {
	if ($var(db_tuned) == 1) {
		return;
	}
	$var(db_tuned) = 1;
	sql_query("pdb", "PRAGMA busy_timeout = 2000");
	sql_query("pdb", "PRAGMA synchronous = NORMAL");
	sql_query("pdb", "PRAGMA busy_timeout", "bt");
	sql_query("pdb", "PRAGMA synchronous", "sy");
	xlog("L_NOTICE", "pg-kam db tuned pid $pp busy_timeout $dbr(bt=>[0,0]) synchronous $dbr(sy=>[0,0])\n");
	sql_result_free("bt");
	sql_result_free("sy");
}
