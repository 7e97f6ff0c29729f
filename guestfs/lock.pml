/*
 * lock.pml - Promela model of vfsd's cross-host lock protocol (lease
 * records on the shared backend), checked with spin.
 *
 * The model mirrors guestfs/ (the protocol in lease.c, the records in
 * record.c, the renewal in renew.c, releases and lapses in lock.c) and
 * docs/locking.md: whenever the protocol there changes (what a record
 * holds, how it is named, when it is written, renewed, read, broken or
 * deleted, what a write or a renewal may do), change this file with it and
 * run
 *     tests/spin/run_model.sh guestfs/lock.pml
 * (meson test model-lock runs it).
 *
 * Variants (spin -D...; run_model.sh runs all of them):
 *   (none)            the NEW protocol.  Must verify: errors: 0.
 *   -DOLD             the OLD protocol: acquisition under .mutex (break
 *                     records older than L, write own record), renewal
 *                     without the mutex that truncates the record in place
 *                     and then writes it (two server steps).  Spin finds
 *                     two instances holding the lock (a): an acquirer
 *                     reads the record while it is empty.
 *   -DOLD_NOFENCE     writes carry no deadline (the OLD write path: checked
 *                     "renewed within W", performed any time later).  On
 *                     the NEW protocol spin finds a write performed after
 *                     another instance's grant (b).
 *   -DWITHDRAW_REWRITE  an acquirer that fails withdraws by rewriting its
 *                     record without the lock (instead of deleting it) and
 *                     its next acquisition publishes into that same record
 *                     (same name).  UNSAFE (a): see "withdraw" below.
 *   -DREPUBLISH       a holder's record is also rewritten by its other
 *                     lock operations on the same file (taking, refusing
 *                     or dropping another lock: lease.c's
 *                     lease_publish_fenced()):
 *                     sent at T without checking the record, deadline
 *                     valid_until, and on success valid_until := T + W.
 *                     Must verify.
 *   -DREPUBLISH_UNFENCED  the same without the deadline (lease.c's publish()
 *                     + lease_adopt_locked() before lease_publish_fenced()):
 *                     UNSAFE (a): any record write that extends
 *                     valid_until must obey the renewal's deadline.
 *   -DFUTURE          records dated ahead of the server's clock (see
 *                     "Records from the future" below) and the rule of
 *                     lease.c's future_expired().  Must verify, (a), (b)
 *                     and (c).  run_model.sh runs it with -DNOCRASH.
 * Mutants, which must fail (they show the assertions and the margins are
 * not vacuous):
 *   -DNO_RENEW_DEADLINE  a renewal may land after its deadline (a): it
 *                     is checked while valid, sent (Ts) after valid_until
 *                     and lands after another host judged the record
 *                     expired: the confirmation, Ts + W, makes the holder
 *                     hold again next to that host.
 *   -DNO_RELEASE_WAIT release does not wait for in-flight writes (b).
 *   -DL=3 -DW=5       W = L + 2 (a).  With exact ticks W <= L + 1 is safe
 *                     (-DL=3 -DW=4 verifies): a holder is valid until at
 *                     most mtime + W, another host judges the record
 *                     expired no earlier than mtime + L + 1.
 *   -DFUTURE -DFUTURE_FIRST_SIGHT  a record from the future is expired
 *                     the first time it is seen (a): a holder's record
 *                     re-dated ahead is deleted while the holder is valid.
 *   -DFUTURE -DFUTURE_NEVER  a record from the future is never expired by
 *                     its age since first sight (c): a record dated far
 *                     ahead keeps everyone out for ever.
 * Other defines: -DL=n -DW=n (default 6 and 4), -DNOCRASH (no crash and
 * restart: two instances, much faster), with FUTURE -DF=n (how far ahead
 * a near-future record is dated, default 1 tick) and -DNF=n (how many
 * re-datings in one run, default 1).
 *
 * What is modelled
 * ----------------
 * Time.  The server's clock and every host's monotonic clock run at the
 * same rate, so each is one global time plus a constant offset, and the
 * protocol only ever subtracts two readings of the same clock (or compares
 * a reading with a deadline on the same clock): the offsets cancel.  Drift
 * and mtime granularity are covered by margins in the real code (W = 2L/3,
 * expired iff age > L + 1); with exact ticks, age > L is exact.
 * The model keeps no absolute time: it stores every timestamp as an age
 * (ticks since then) and every deadline as the ticks left, and Env's tick
 * (at any moment, between any two steps of anyone) ages them all.  Time
 * is therefore UNBOUNDED (no horizon), and states that differ only by
 * when they happen are one state.  A host that takes no step while Env
 * ticks is paused (SIGSTOP) or slow, for any number of ticks.  Ages are
 * capped where a larger value cannot change any decision:
 *   M_self's age (age_ms)    cap W.  M_self is later than T0, so once it
 *                            is W old step (4) refuses the grant anyway;
 *                            below W it is exact.  For such a doomed
 *                            acquisition the cap makes more records look
 *                            expired than they are (it may delete them):
 *                            an over-approximation, sound for proving
 *                            safety.  (OLD has no step (4): there the cap
 *                            only adds behaviours; OLD must fail anyway.)
 *   a record's age (age_mt)  cap CAP_MT = W + L + 1: expired iff
 *                            age_mt - age_ms > L, exact with age_ms <= W.
 *   age of T0, of Ts         cap W: only max(0, W - age) is used.
 *   valid_until, deadlines   ticks left, 0..W.
 * Each tick prints "@ tick"; run_model.sh numbers the ticks (t=...) when
 * it prints a counterexample.
 *
 * Instances.  Two hosts, A (_pid 0) and B (_pid 1), each running one
 * instance, and one restart: at any moment (Env's "crash" step) instance A
 * is killed -9: its memory is gone (it holds nothing any more; its pc is
 * frozen by `unless`), its record and its in-flight requests stay with the
 * server, and the restarted instance A' (_pid 2: new token, so its own
 * record slot and names) starts.  Each instance loops acquire -> hold
 * (write / renew) -> release -> acquire ..., for ever, and every record it
 * creates gets a new epoch (name), so "same instance, new epoch" is
 * covered too.  Only A crashes: A and B run the same code, so a crash of
 * B is the same run with the names swapped.
 * Why this bound: a violation needs two live instances that both believe
 * they hold the lock, or one whose write lands after another's grant.
 * Besides what they do themselves, what can mislead them is state nobody
 * looks after any more: the record and in-flight write or renewal of a
 * dead instance, which the crash of A provides next to two live instances
 * (B and A').  A long pause (or stopping for good) is covered by
 * interleaving; a second crash only leaves a second dead record, judged
 * exactly as the first (expired or not, by its mtime).  Three live hosts
 * at once are argued, not checked: that state space does not fit in a
 * few minutes (two live instances plus the dead one take seconds).
 *
 * Records.  One slot per instance on the server: rec_ex (exists), rec_lk
 * (NONE, or PENDING / HELD: the lock), age_mt (age of its mtime, the
 * server's time when it performed the write).  A record write is atomic
 * (temp file + rename): one step; a reader sees the old or the new record.
 * The write's sender took Ts (T0) before sending it, so Ts <= mtime.
 * Names: a record's name is (host, token, epoch), never reused.  The model
 * does not count epochs but keeps, for each reader r and owner k, the bit
 * nm[r][k] = "the name of k's record that r listed is still k's current
 * name": set when r lists the directory, cleared for every reader when k
 * creates its record under a new name.  A read or a delete "by name" acts
 * only if that bit is set and the record exists.  Renewals rewrite the
 * record under the same name.  (vfsd writes every version under a new
 * name (record.c's record_put()), the successor before the predecessor
 * goes (lease.c's lease_drop_predecessor()), and a reader that finds a
 * listed name gone lists again (lease_remote_locks()): readers see the
 * newest version, as here, and a deleter can only ever delete the version
 * it judged; in the model it may delete a renewed one: more behaviours,
 * not fewer.)
 * The lock: one exclusive lock on one file (every lock conflicts).
 * An instance never reads its own records.  lease.c's lease_remote_locks()
 * skips its current record, its superseded ones (their removal failed) and
 * its leftovers (records of a file number none of its files uses any more:
 * a release whose removal failed); a record of another live file number of
 * the same daemon (another vfsd path of the backend file) is read like
 * another host's, so two file numbers are two instances here.  A leftover
 * is not modelled: to the others it is a record whose holder paused for
 * good, which only keeps them out longer.  Nor is the record a lapsed
 * lease leaves behind: vfsd keeps it until it expires (a release after
 * the lapse: lock.c's set_lost_locked(); a rewrite confirmed too late:
 * lease.c's lease_publish_fenced(), renew.c's renew_one()), for the L/3
 * margin that covers requests a server finishes after their deadline; here
 * abandoned requests are never performed, and a release deletes the
 * record.
 *
 * Requests and faults.  Writes to the locked file and renewals carry a
 * deadline (valid_until); they sit in flight (wr[], rn[]) until Env
 * performs them (at any time before the deadline) or the deadline passes
 * (then they are abandoned and never performed).  A write's deadline is
 * valid_until when it was issued (wr_dl).  At most one write in flight per
 * instance is enough: a violation involves one late write, and a write
 * blocking the slot can always be performed at once to free it.  At most
 * one renewal in flight per instance (one renewal at a time, the file is
 * busy); while it is in flight valid_until cannot change, so its deadline
 * is vu[].  Requests without a deadline (publish, list, read, delete,
 * withdraw) are synchronous: the client waits; a delay is the client
 * being slow (ticks between its steps), and one still in flight at a
 * crash lands later, which is the same as the crashed client having done
 * it and stopped right after.
 *
 * Records from the future (FUTURE).  A record's mtime may lie ahead of
 * the server's clock: set by hand by whoever can write the directory, or
 * left by a server whose clock stepped back since (a skewed writer).  Env
 * may re-date any existing record (NF times in a run) to 1..F ticks ahead
 * (the server's clock reaches that date, and the record then ages like
 * any other) or FAR ahead (never reached: a year).  A re-dating is a new
 * version of the record, like a write.  A reader judges a record dated
 * ahead of its M_self by lease.c's future_expired(): it notes when it
 * first saw that version (obs[], lease.c's future[] table, instance
 * memory) and takes it as expired once it has seen it unchanged for more
 * than L ticks (vfsd: L + 1 s of its monotonic clock, the same margin as
 * the server-clock rule).  Safe because the version's writer took its T0
 * (or Ts) before sending it, so before its first sighting: its validity
 * ended by first sighting + W <= first sighting + L + 1.  The model keeps a
 * sighting until the version changes (vfsd forgets it once it judged it
 * expired, or when its table is full, and only ever sees it later): more
 * expiries, sound for safety.  Where age_ms is capped (a doomed
 * acquisition) the model cannot tell whether a record is dated ahead of
 * M_self, and applies both rules.  Run with -DNOCRASH: a crashed instance
 * differs from one paused for good only in losing its sightings, and a
 * restarted one starts with none, which only delays expiries; with the
 * crash the state space is 40 times larger.
 *
 * Properties.
 *   (a) EXCL: no two instances hold the lock at one instant, where
 *       holds(i) = granted && !lost && now < valid_until.  Checked after
 *       every step that can make an instance hold (a grant, a renewal
 *       confirmation) and before every tick (holding only ends otherwise).
 *   (b) A write performed by the server was issued under a lock that no
 *       other instance has been granted since: every grant marks the other
 *       instances' in-flight writes stale (ghost wr_stale), and the server
 *       asserts !wr_stale when it performs a write.
 *   (c) FUTURE only, progress: a record dated FAR ahead (whose age by the
 *       server's clock never grows) keeps a reader out at most L ticks
 *       after the reader first found it in its way (ghost wt[]): a
 *       waiter that retries gets past it within L ticks plus one
 *       acquisition, unless its holder writes it again.  Spin's
 *       liveness checks (acceptance cycles under fairness) do not suit a
 *       model whose clock may tick for ever while a host is paused; the
 *       bound is an assertion instead.
 */

#ifndef L
#define L 6             /* lease, server ticks */
#endif
#ifndef W
#define W 4             /* holder's validity window, W < L (2L/3) */
#endif
#define CAP_MT (W + L + 1)

#define NI 3            /* instances: A, B, A' (A restarted) */
/* record content.  record.c tells "pending" from "held", but both conflict
 * alike and nothing else reads the difference: one value, fewer states */
#define NONE    0
#define PENDING 1
#define HELD    1

/*
 * FUTURE: records dated ahead of the server's clock (see "Records from
 * the future" above).  A record's mtime is then age_mt < 0 (F ticks ahead
 * at most, reached by the server's clock as it ticks) or FAR (so far ahead
 * that no run reaches it: a year).  obs[] is lease.c's future[] table, one
 * per instance; wt[] is the ghost for (c).
 */
#ifdef FUTURE
#ifndef F
#define F 1             /* near future: at most F ticks ahead */
#endif
#ifndef NF
#define NF 1            /* future datings in one run */
#endif
#define FAR (-100)
#define MT_T short
#define CAP_OBS (L + 2)         /* 1 + age; an age of L + 1 > L expires */
#define CAP_WT (L + 2)          /* 1 + age; just past the bound of (c) */
byte ntouch;                    /* future datings so far */
byte obs[NI*NI];                /* OBS(r,k): 0, or 1 + ticks since r first
                                 * saw k's current version dated ahead of
                                 * r's M_self */
byte wt[NI*NI];                 /* WT(r,k), ghost: 0, or 1 + ticks since r
                                 * first found k's current version, dated
                                 * FAR ahead, in its way (a conflict) */
#define OBS(r,k) obs[(r)*NI+(k)]
#define WT(r,k) wt[(r)*NI+(k)]
/* k's record is written, deleted or re-dated: a new version (vfsd: a new
 * name, or the same name with another mtime), which nobody has seen */
#define MT_NEW(k) age_mt[k] = 0; \
	OBS(0,k) = 0; OBS(1,k) = 0; OBS(2,k) = 0; \
	WT(0,k) = 0; WT(1,k) = 0; WT(2,k) = 0
#define FUT_TICK1(r,k) \
	if :: OBS(r,k) > 0 && OBS(r,k) < CAP_OBS -> OBS(r,k)++ :: else -> skip fi; \
	if :: WT(r,k) > 0 && WT(r,k) < CAP_WT -> WT(r,k)++ :: else -> skip fi
#define FUT_TICK(k) FUT_TICK1(0,k); FUT_TICK1(1,k); FUT_TICK1(2,k)
#define MT_TICK(k) \
	if :: rec_ex[k] && age_mt[k] != FAR && age_mt[k] < CAP_MT -> age_mt[k]++ \
	   :: else -> skip fi; \
	FUT_TICK(k)
/* dated ahead of the reader's M_self: lease.c's expired() turns to
 * future_expired().  Where age_ms is capped (a doomed acquisition, M_self
 * perhaps older than the model knows) every record may be: both rules
 * apply, more behaviours than vfsd's */
#define FUT(k) (age_mt[k] < age_ms[_pid] || age_ms[_pid] == W)
#if defined(FUTURE_FIRST_SIGHT)
#define OBS_GONE(k) true
#elif defined(FUTURE_NEVER)
#define OBS_GONE(k) false
#else
#define OBS_GONE(k) (OBS(_pid,k) > L + 1)      /* unchanged for > L ticks */
#endif
#define EXPIRED(k) (age_mt[k] - age_ms[_pid] > L || (FUT(k) && OBS_GONE(k)))
#define OBS_START(k) \
	if :: FUT(k) && OBS(_pid,k) == 0 -> OBS(_pid,k) = 1 :: else -> skip fi
/* (c): a record dated FAR ahead (the server's clock never ages it) blocks
 * a reader at most L ticks after the reader first found it in its way */
#define PROGRESS(k) \
	if :: age_mt[k] == FAR -> \
		if :: WT(_pid,k) == 0 -> WT(_pid,k) = 1 :: else -> skip fi; \
		assert(WT(_pid,k) - 1 <= L) \
	   :: else -> skip fi
/* the hostile or skewed writer: an existing record gets an mtime ahead of
 * the server's clock, 1..F ticks or FAR */
#define TOUCH1(k) \
	:: atomic { ntouch < NF && rec_ex[k] -> ntouch++; MT_NEW(k); \
		if :: age_mt[k] = FAR \
		   :: age_mt[k] = -1 \
		   :: F >= 2 -> age_mt[k] = -2 \
		fi; \
		printf("@ inst%d's record is dated ahead of the server's clock (%d)\n", k, age_mt[k]); \
		DEAD_A }
#define FORGET_OBS(r) \
	OBS(r,0) = 0; OBS(r,1) = 0; OBS(r,2) = 0; WT(r,0) = 0; WT(r,1) = 0; WT(r,2) = 0
#else
#define MT_T byte
#define MT_NEW(k) age_mt[k] = 0
#define MT_TICK(k) \
	if :: rec_ex[k] && age_mt[k] < CAP_MT -> age_mt[k]++ :: else -> skip fi
#define EXPIRED(k) (age_mt[k] - age_ms[_pid] > L)
#define OBS_START(k) skip
#define PROGRESS(k) skip
#define FORGET_OBS(r) skip
#endif

bool crashed;                   /* A was killed */
bool restarted;                 /* A is gone for good: A' may start */

/* server: one lease-record slot per instance */
bool rec_ex[NI];
byte rec_lk[NI];
MT_T age_mt[NI];                /* age of its mtime, capped at CAP_MT (FUTURE:
                                 * negative: dated ahead; FAR: for ever) */

/* names: nm[r*NI+k] = the name of k's record that r listed is current */
bool nm[NI*NI];
#define NM(r,k) nm[(r)*NI+(k)]

/* acquisition (instance memory, global so that the tick can age it) */
byte acq[NI];                   /* 0 none, 1 T0 taken, 2 published (M_self) */
byte age_t0[NI];                /* now - T0, capped at W */
byte age_ms[NI];                /* now - M_self (OLD: the mutex's mtime), cap W */

/* holder state (instance memory; also read by the ghost checks) */
bool granted[NI];
bool lost[NI];
byte vu[NI];                    /* valid_until - now, 0 = lapsed */

/* in-flight write to the locked file (at most one per instance) */
bool wr[NI];
byte wr_dl[NI];                 /* its deadline - now */
bool wr_stale[NI];              /* ghost: another instance was granted since */

/* renewal: 0 idle, 1 checked, 2 in flight (deadline vu[]), 3 performed;
 * 4 republish in flight (REPUBLISH; deadline vu[] unless UNFENCED);
 * OLD: 1 checked, 2 truncated, 3 written */
byte rn[NI];
byte age_ts[NI];                /* now - Ts, capped at W */

#ifdef OLD
bool mutex;                     /* .mutex exists */
#endif

#define holds(k) (granted[k] && !lost[k] && vu[k] > 0)
#define EXCL (!(holds(0) && holds(1)) && !(holds(0) && holds(2)) && \
              !(holds(1) && holds(2)))
#define FORALL(M) M(0); M(1); M(2)

/* k's record gets a new name: every earlier listing of k is stale */
#define NEWNAME(k) NM(0,k) = 0; NM(1,k) = 0; NM(2,k) = 0

/* list the record directory: remember every other record's name */
#define LIST1(k) if :: (k) != _pid && rec_ex[k] -> \
                      todo = todo | (1 << (k)); NM(_pid,k) = 1 \
                    :: else -> skip fi
#define FORGET1(k) NM(_pid,k) = 0

/* a grant: other instances' in-flight writes become stale (ghost) */
#define STALE1(k) if :: (k) != _pid && wr[k] -> wr_stale[k] = 1 \
                     :: else -> skip fi

/*
 * A is dead: drop what only its memory used, so that states differing
 * only there are one state.  Without a record write of A in flight (which
 * could still rewrite, even re-create, its record), A's record can only
 * be read or deleted any more; once it holds no lock, or is older than
 * CAP_MT (expired for every M_self, since age_ms <= W), reading it
 * changes nothing and deleting it changes nothing: it is as good as gone.
 */
#define DEAD_A \
	if :: crashed -> \
		if :: rn[0] != 2 && rn[0] != 4 -> rn[0] = 0; age_ts[0] = 0; vu[0] = 0; \
			if :: rec_ex[0] && (rec_lk[0] == NONE || age_mt[0] == CAP_MT) -> \
				rec_ex[0] = 0; rec_lk[0] = NONE; MT_NEW(0); \
				NM(1,0) = 0; NM(2,0) = 0 \
			   :: else -> skip fi \
		   :: else -> skip fi; \
		acq[0] = 0; age_t0[0] = 0; age_ms[0] = 0 \
	   :: else -> skip fi

/* the tick: everything ages by one; missed deadlines are abandoned */
#ifdef OLD_NOFENCE
#define WR_TICK(k) skip         /* no deadline: the write may land any time */
#define WR_OK(k) true
#else
#define WR_TICK(k) if :: wr[k] -> wr_dl[k]--; \
                        if :: wr_dl[k] == 0 -> wr[k] = 0; wr_stale[k] = 0 \
                           :: else -> skip fi \
                      :: else -> skip fi
#define WR_OK(k) true           /* wr_dl[k] > 0 while in flight */
#endif
#ifdef OLD
#define RN_TICK(k) if :: rn[k] >= 2 && age_ts[k] < W -> age_ts[k]++ \
                      :: else -> skip fi
#else
#ifdef NO_RENEW_DEADLINE
#define RN_TICK(k) if :: rn[k] >= 2 && age_ts[k] < W -> age_ts[k]++ \
                      :: else -> skip fi
#define RN_OK(k) true
#else
#define RN_TICK(k) if :: rn[k] >= 2 && age_ts[k] < W -> age_ts[k]++ \
                      :: else -> skip fi; \
                   if :: (rn[k] == 2 || (rn[k] == 4 && REPUB_FENCED)) && \
                         vu[k] == 1 -> rn[k] = 0; age_ts[k] = 0 \
                      :: else -> skip fi
#define RN_OK(k) (vu[k] > 0)
#endif
#endif
/* REPUBLISH: record rewrites by other lock operations (rn 4) */
#ifdef REPUBLISH_UNFENCED
#ifndef REPUBLISH
#define REPUBLISH
#endif
#define REPUB_FENCED false
#define REPUB_OK(k) true
#else
#define REPUB_FENCED true
#define REPUB_OK(k) (vu[k] > 0)
#endif
#define TICK1(k) \
	MT_TICK(k); \
	if :: acq[k] >= 1 && age_t0[k] < W -> age_t0[k]++ :: else -> skip fi; \
	if :: acq[k] == 2 && age_ms[k] < W -> age_ms[k]++ :: else -> skip fi; \
	RN_TICK(k); \
	if :: vu[k] > 0 -> vu[k]-- :: else -> skip fi; \
	WR_TICK(k)

/*
 * Acquire, step (2): read listed record k (one server step; others act
 * between reads); if it expired, the acquirer may delete it by its name
 * (a later, separate step: the record may be gone by then, or, were names
 * ever reused, be a newer record).  Expired iff M_self - M_o > L, i.e.
 * age_mt - age_ms > L (OLD: the mutex's mtime instead of M_self).
 */
inline read_one(k)
{
	atomic {
		todo = todo & ~(1 << (k));
		if
		:: NM(_pid,k) && rec_ex[k] ->
			OBS_START(k);
			if
			:: EXPIRED(k) ->                        /* expired */
				ek = k + 1;
				printf("@ inst%d reads inst%d's record (age %d): expired\n", _pid, k, age_mt[k])
			:: else ->                      /* live: pending or held conflicts */
				if :: rec_lk[k] != NONE -> cf = 1 :: else -> skip fi;
				printf("@ inst%d reads inst%d's record (age %d, lock %d): conflict=%d\n", _pid, k, age_mt[k], rec_lk[k], cf);
				if :: cf -> PROGRESS(k) :: else -> skip fi      /* (c) */
			fi
		:: else -> skip                         /* gone since listed */
		fi
	}
	if
	:: ek != 0 ->                                   /* delete it by its name */
		atomic {
			if
			:: NM(_pid,k) && rec_ex[k] ->
				printf("@ inst%d deletes inst%d's record (age %d, lock %d)\n", _pid, k, age_mt[k], rec_lk[k]);
				rec_ex[k] = 0; rec_lk[k] = NONE; MT_NEW(k)
			:: else -> skip
			fi;
			ek = 0
		}
	:: ek != 0 -> ek = 0                            /* or leave it */
	:: else -> skip
	fi
}

active [NI] proctype Inst()
{
	byte todo, ek;
	bool cf;
#ifdef WITHDRAW_REWRITE
	bool hasname;           /* my withdrawn record still stands */
#endif

	if
	:: _pid == 2 -> restarted       /* A' starts when A is gone */
	:: else -> skip
	fi;
{
	skip;                   /* (a label may not open a block) */
acquire:
#ifndef OLD
	/* ---- NEW acquisition ---- */
	acq[_pid] = 1;                                  /* (1) T0 := now */
	atomic {                                        /* (1) publish own record, lock pending */
#ifdef WITHDRAW_REWRITE
		if
		:: !hasname -> NEWNAME(_pid); hasname = 1
		:: else -> skip                         /* rewrite the withdrawn record */
		fi;
#else
		NEWNAME(_pid);                          /* always a new epoch */
#endif
		rec_ex[_pid] = 1; rec_lk[_pid] = PENDING; MT_NEW(_pid);
		acq[_pid] = 2; age_ms[_pid] = 0;        /* M_self */
		printf("@ inst%d publishes its record (pending), T0=t-%d\n", _pid, age_t0[_pid])
	}
	atomic { todo = 0; FORALL(LIST1) }              /* (2) list the record directory */
	do                                              /* (2) read every other record */
	:: !cf && (todo & 1) -> read_one(0)
	:: !cf && (todo & 2) -> read_one(1)
	:: !cf && (todo & 4) -> read_one(2)
	:: cf || todo == 0 -> break
	od;
	atomic {
		todo = 0; FORALL(FORGET1);
		if
		:: cf -> skip                           /* (3) conflict: withdraw, fail */
		:: !cf && age_t0[_pid] >= W ->          /* (4) now >= T0 + W: withdraw, fail */
			cf = 1
		:: else ->                              /* (4) GRANTED, valid_until := T0 + W */
			granted[_pid] = 1; lost[_pid] = 0; vu[_pid] = W - age_t0[_pid];
			FORALL(STALE1);
			printf("@ inst%d GRANTED, valid_until=t+%d\n", _pid, vu[_pid]);
			assert(EXCL)                    /* (a) */
		fi;
		acq[_pid] = 0; age_t0[_pid] = 0; age_ms[_pid] = 0
	}
	if
	:: cf -> goto withdraw
	:: else -> goto hold
	fi;

withdraw:
	/*
	 * (3)/(4) withdraw and fail (the caller may retry: goto acquire).
	 * Default: delete the record (its name is never used again; the next
	 * acquisition publishes under a new epoch).
	 * WITHDRAW_REWRITE: rewrite the record without the lock and publish
	 * into the same record next time.  That is UNSAFE: another acquirer
	 * may have read this record while it was withdrawn and old (expired),
	 * and delete it by name AFTER our next acquisition republished it
	 * (pending) under the same name: we can be granted with no record on
	 * the server, and the next acquirer is granted next to us.
	 */
	atomic {
#ifdef WITHDRAW_REWRITE
		rec_ex[_pid] = 1; rec_lk[_pid] = NONE; MT_NEW(_pid);
		printf("@ inst%d withdraws (rewrites its record without the lock)\n", _pid);
#else
		rec_ex[_pid] = 0; rec_lk[_pid] = NONE; MT_NEW(_pid);
		printf("@ inst%d withdraws (deletes its record)\n", _pid);
#endif
		cf = 0
	}
	goto acquire;

#else /* OLD */
	/* ---- OLD acquisition (docs/locking.md, "Taking a lock") ---- */
	atomic { !mutex -> mutex = 1;                   /* 2. create .mutex O_EXCL */
		acq[_pid] = 2; age_ms[_pid] = 0;        /* its mtime: the server's now */
		printf("@ inst%d takes .mutex\n", _pid) }
	atomic { todo = 0; FORALL(LIST1) }              /* 3. list the records */
	do                                              /* 3. read others, break old ones */
	:: !cf && (todo & 1) -> read_one(0)
	:: !cf && (todo & 2) -> read_one(1)
	:: !cf && (todo & 4) -> read_one(2)
	:: cf || todo == 0 -> break
	od;
	atomic { todo = 0; FORALL(FORGET1) }
	if
	:: cf ->                                        /* 4. conflict: give up */
		atomic { mutex = 0; cf = 0; acq[_pid] = 0; age_ms[_pid] = 0;
			printf("@ inst%d fails, removes .mutex\n", _pid) }
		goto acquire
	:: else -> skip
	fi;
	atomic {                                        /* 5. write own record: granted */
		NEWNAME(_pid);
		rec_ex[_pid] = 1; rec_lk[_pid] = HELD; MT_NEW(_pid);
		granted[_pid] = 1; lost[_pid] = 0; vu[_pid] = W;
		FORALL(STALE1);
		printf("@ inst%d writes its record: GRANTED, valid_until=t+%d\n", _pid, vu[_pid]);
		assert(EXCL);                           /* (a) */
		acq[_pid] = 0; age_ms[_pid] = 0
	}
	atomic { mutex = 0 }                            /* 5. remove .mutex */
#endif

hold:
	do
	/* write to the locked file: allowed iff !lost && now < valid_until;
	 * the request carries deadline valid_until (none with OLD_NOFENCE) */
	:: atomic { !wr[_pid] && !lost[_pid] && vu[_pid] > 0 ->
		wr[_pid] = 1; wr_dl[_pid] = vu[_pid]; wr_stale[_pid] = 0;
		printf("@ inst%d issues a write (deadline t+%d)\n", _pid, vu[_pid]) }
#ifndef OLD
	/* renew (NEW): if lost or now >= valid_until: lost (permanent);
	 * else check own record still exists (only its owner writes it,
	 * others only delete it by name: exists = unchanged) */
	:: atomic { rn[_pid] == 0 && !lost[_pid] ->
		if
		:: vu[_pid] == 0 || !rec_ex[_pid] -> lost[_pid] = 1;
			printf("@ inst%d renew: LOST\n", _pid)
		:: else -> rn[_pid] = 1
		fi }
	/* Ts := now; send the rewrite with deadline valid_until (Env performs
	 * it before then, or it is abandoned at the deadline) */
	:: atomic { rn[_pid] == 1 ->
		if
		:: RN_OK(_pid) -> rn[_pid] = 2; age_ts[_pid] = 0;
			printf("@ inst%d renew: sends the rewrite (deadline t+%d)\n", _pid, vu[_pid])
		:: else -> rn[_pid] = 0         /* missed its deadline before it left */
		fi }
#ifdef REPUBLISH
	/* another lock operation on the same file (taking, refusing or
	 * dropping another lock) rewrites the record as a side effect, as
	 * lease.c's lease_publish_fenced() does: T := now, no check of the
	 * record, deadline valid_until (none with REPUBLISH_UNFENCED: not even
	 * a lapse check); on success valid_until := T + W, like a renewal */
	:: atomic { rn[_pid] == 0 && !lost[_pid] ->
		if
		:: REPUB_OK(_pid) -> rn[_pid] = 4; age_ts[_pid] = 0;
			printf("@ inst%d republishes its record for another lock operation\n", _pid)
		:: else -> lost[_pid] = 1       /* deadline passed: not sent, lapsed */
		fi }
#endif
#else
	/* renew (OLD): no mutex; check the record exists (else lost), then
	 * open it O_TRUNC (exists, EMPTY, fresh mtime), then write the content:
	 * two server steps.  Validity is "renewed within W" (not permanent). */
	:: atomic { rn[_pid] == 0 && !lost[_pid] ->
		if
		:: !rec_ex[_pid] -> lost[_pid] = 1
		:: else -> rn[_pid] = 1
		fi }
	:: atomic { rn[_pid] == 1 -> rn[_pid] = 2; age_ts[_pid] = 0;
		rec_ex[_pid] = 1; rec_lk[_pid] = NONE; MT_NEW(_pid);
		printf("@ inst%d renew: truncates its record (now empty)\n", _pid) }
	:: atomic { rn[_pid] == 2 -> rn[_pid] = 3;
		rec_ex[_pid] = 1; rec_lk[_pid] = HELD; MT_NEW(_pid);
		printf("@ inst%d renew: writes its record\n", _pid) }
#endif
	/* confirmed renewal: valid_until := Ts + W */
	:: atomic { rn[_pid] == 3 -> vu[_pid] = W - age_ts[_pid];
		rn[_pid] = 0; age_ts[_pid] = 0;
		printf("@ inst%d renewed, valid_until=t+%d\n", _pid, vu[_pid]);
		assert(EXCL) }                          /* (a) */
	/* release: wait for own in-flight writes (and renewal: a renewal
	 * landing after the delete would re-create the record), then delete
	 * own record by its name */
	:: atomic {
#ifndef NO_RELEASE_WAIT
		wr[_pid] == 0 &&
#endif
		rn[_pid] == 0 ->
		rec_ex[_pid] = 0; rec_lk[_pid] = NONE; MT_NEW(_pid);
		granted[_pid] = 0; lost[_pid] = 0; vu[_pid] = 0;
#ifdef WITHDRAW_REWRITE
		hasname = 0;
#endif
		printf("@ inst%d releases (deletes its record)\n", _pid) }
		goto acquire
	od
} unless {
	/* kill -9 of A (see Env): A takes no further step; forget its locals */
	atomic { _pid == 0 && crashed ->
		todo = 0; ek = 0; cf = 0; restarted = 1;
#ifdef WITHDRAW_REWRITE
		hasname = 0;
#endif
		FORALL(FORGET1) }
}
}

/* the server's clock, the network, and the crash of A */
#ifndef OLD
#define SERVE_RN(k) \
	:: atomic { rn[k] == 2 && RN_OK(k) -> /* before its deadline */ \
		rec_ex[k] = 1; rec_lk[k] = HELD; MT_NEW(k); rn[k] = 3; \
		printf("@ server performs inst%d's renewal (deadline t+%d)\n", k, vu[k]); \
		DEAD_A } \
	:: atomic { rn[k] == 4 && REPUB_OK(k) -> /* REPUBLISH */ \
		rec_ex[k] = 1; rec_lk[k] = HELD; MT_NEW(k); rn[k] = 3; \
		printf("@ server performs inst%d's republish\n", k); \
		DEAD_A }
#else
#define SERVE_RN(k)
#endif
#define SERVE(k) \
	:: atomic { wr[k] && WR_OK(k) -> \
		printf("@ server performs inst%d's write (deadline t+%d)\n", k, wr_dl[k]); \
		assert(!wr_stale[k]); /* (b) */ \
		wr[k] = 0; wr_dl[k] = 0; wr_stale[k] = 0 } \
	SERVE_RN(k)

active proctype Env()
{
	do
	:: atomic { assert(EXCL); FORALL(TICK1); DEAD_A; printf("@ tick\n") }
	SERVE(0)
	SERVE(1)
	SERVE(2)
#ifdef FUTURE
	TOUCH1(0)
	TOUCH1(1)
	TOUCH1(2)
#endif
#ifndef NOCRASH
	/* kill -9 of A at any moment: its memory (the lock it held) is gone;
	 * its record and in-flight requests stay; A' starts.  (OLD: a .mutex
	 * left by A only blocks the others, which is safe.) */
	:: atomic { !crashed -> crashed = 1; granted[0] = 0; lost[0] = 0;
		FORGET_OBS(0); DEAD_A;
		printf("@ inst0 is killed (kill -9); inst2 (its restart) may start\n") }
#endif
	od
}
