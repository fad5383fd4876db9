"""[engine] section: sessions, reference timeline, clock and content sync, bundles."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ClockConfig:
    """[engine.clock]: per-device-clock offset/drift estimation from (device timestamp, arrival time) pairs."""

    bin_s: float = 0.5
    """Width of the device-time bins whose minimum one-way delay feeds the lower envelope, seconds (default 0.5)."""
    window_s: float = 60.0
    """Length of the sliding window of bins the envelope is fitted to, seconds (default 60)."""
    settle_min_span_s: float = 2.0
    """Least span of observations before an estimate can be called settled, seconds (default 2)."""
    settle_uncertainty_s: float = 0.002
    """An estimate with at most this offset uncertainty and the least span is settled, seconds (default 0.002)."""
    settle_timeout_s: float = 8.0
    """After this span the estimate is called settled whatever its uncertainty (which is still published),
    seconds (default 8)."""
    jump_s: float = 0.05
    """A residual against the envelope larger than this (plus 3 uncertainties) is a clock-jump candidate,
    seconds (default 0.05)."""
    jump_confirm_s: float = 0.75
    """A jump upwards (all observations late by more than `jump_s`) is confirmed once they span this much device
    time and this much host time (a backlog read at once after the service stalled packs seconds of device time
    into milliseconds); a jump below the envelope (physically impossible delay) is confirmed at once, seconds
    (default 0.75)."""
    stall_max_s: float = 10.0
    """Observations late by a jump's margin are no jump while the other clocks' observations sent at the same
    time were as late (the host or its network stalled, and the service read a backlog late: a ``stall`` clock
    event), for up to this much host time; past it (every clock stepped together, or the host's clock did) they
    are a jump. With no other clock to ask, a jump after `jump_confirm_s`; with others whose observations of that
    time do not come, 2 s later, seconds (default 10)."""
    young_span_s: float = 5.0
    """While a model's observations span less than this, one below its envelope by more than `jump_s` (plus 3
    uncertainties) means its first observations arrived late (a host busy at startup: every `warpsync demo`
    start showed one to four such points, 50-100 ms below), not that the clock jumped: the model starts again
    from that observation, reported as a ``rebase`` clock event, without the stream's `jumped` flag and keeping
    its content features. A real step this early is followed the same way, unflagged, seconds (default 5)."""
    slope_quantile: float = 0.1
    """The published drift is the slope of the line this share of the bins' minimum delays lie below (quantile
    regression), once 10 s of bins are in; the clock mapping keeps the lower envelope's slope. 0: the envelope's
    slope for both. The envelope rests on the two lowest minima it touches, and in a live service those wander
    with the host's load: five 110-120 s live runs of the default rig put the worst clock's drift 2.5-6.4 ppm off
    with 0, 1.7-3.6 ppm with 0.1 (docs/engine-log.md, "Drift in a live service") (default 0.1)."""
    prior_keep_s: float = 60.0
    """After a jump or restart the slope from before (the same oscillator) is kept until the new fit spans this
    much, or as much as the fit before did if less, seconds. A shorter fit's slope is the poorer one: 30 s put
    cam2's live drift 3-6 ppm off (default 60)."""
    backwards_s: float = 0.001
    """Device time going backwards by more than this is a device restart, seconds (default 0.001)."""
    in_flight_s: float = 2.0
    """For this long after a jump or restart (host time), a chunk from a stream of the clock that has sent nothing
    since, which the clock model before the reset explains and the new one cannot, is data from before it that
    was in flight: dropped and counted as ``stale``, not taken for another jump. Later, such data is a jump
    again, seconds (default 2)."""
    forget_s: float = 600.0
    """A clock model not fed for this long (host time) is dropped; below it the model survives a publisher's
    reconnect under the same clock id, seconds (default 600)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.slope_quantile < 1.0:
            # a share of the bins' minima below the line: 1 or more puts every one of them below it
            raise ValueError(f"slope_quantile must be within [0, 1), got {self.slope_quantile}")


@dataclass(frozen=True)
class ContentConfig:
    """[engine.content]: windowed content alignment (cross-correlation / banded DTW / CTW) and its smoother."""

    enabled: bool = True
    """Run content sync; off means clock sync only."""
    hop_s: float = 0.5
    """How often each stream's content estimate is updated, seconds of reference time (default 0.5)."""
    max_streams_per_call: int = 4
    """Most streams whose hop runs in one call of the stage; the others stay due for the next call (keeps the
    event latency of large sessions low) (default 4)."""
    window_s: float = 4.0
    """Length of the feature window aligned each hop, seconds (default 4)."""
    kinetic_window_s: float = 8.0
    """Length of the window of a video-sensor pair (kinetic envelopes), seconds: an IMU feels one object where a
    camera sees them all, so fewer events are shared per second than between microphones (default 8)."""
    grid_s: float = 0.001
    """Resolution of the common time grid windows are resampled to before alignment, seconds (default 0.001)."""
    envelope_sigma_floor_s: float = 0.001
    """Least sigma given to a lag measured on activity envelopes (the shapes of one event differ between sensors:
    reverberation, noise, the feature itself); GCC-PHAT refinements on raw audio are not floored, seconds
    (default 0.001)."""
    min_search_s: float = 0.02
    """Smallest lag search half-range around the current estimate, seconds (default 0.02)."""
    prior_latency_s: float = 0.2
    """Half-range of the first search when only the clock prior is known: covers capture latency that
    timestamps cannot see, seconds (default 0.2)."""
    search_sigmas: float = 5.0
    """Search half-range in units of the current estimate's uncertainty (default 5)."""
    min_corr: float = 0.3
    """Least normalized correlation at the peak for a window to count as informative (default 0.3)."""
    min_prominence: float = 0.05
    """Least margin of the peak over the best value outside its main lobe (default 0.05)."""
    min_activity: float = 1e-6
    """Windows whose activity envelope has a smaller standard deviation are uninformative (silence, no
    motion), in the envelope's units (default 1e-6)."""
    kinetic_bias_frames: float = 0.1
    """Systematic uncertainty of a camera<->sensor lag, in the camera's frame periods: published with the
    correction (root-sum-square), never averaged away: a camera's motion energy is not linear in speed, so its
    kinetic envelope peaks a fraction of a frame off the sensor's whatever the clocks (default 0.1)."""
    acquire_hops: int = 3
    """Informative windows that must agree before content sync first locks (default 3)."""
    acquire_span_s: float = 2.0
    """The agreeing windows of the first lock must span at least this much reference time, seconds (default 2)."""
    acquire_prominence: float = 0.1
    """Least peak prominence of a window that counts towards the first lock (default 0.1)."""
    acquire_tolerance_s: float = 0.002
    """How closely those windows must agree (or within 3 of their sigmas, whichever is larger), seconds
    (default 0.002)."""
    acquire_split: bool = True
    """A sensor's window against its camera's cells that would start a lock (or, locked, an outlier that would
    count towards a re-lock) counts only if each half of it, on its own, peaks within half a frame of the whole
    window's lag: windows 4 s apart share half their data, and a few events in that shared half can make them
    agree on a chance lag; the truth shows in both halves (default true)."""
    split_broad_near: bool = True
    """Before a camera's first lock, a half of a window (the split test of its cells) whose best peak is a
    ``broad`` hump of slow motion away from the window's lag, which locates nothing, is searched again around
    that lag over the main lobe of a velocity change (1 + B frames either side), as a locked window would be; it
    carries the lag if it peaks informatively within a quarter frame of it there (default true)."""
    acquire_highpass_s: float = 0.1
    """Before a camera's first lock, its cells and the envelope they are weighed against lose their slow part (a
    Gaussian of this sigma subtracted from each) before the lag search and its split test: a velocity change
    lasts tens of ms, slow motion (wobble) makes humps of 136-204 ms whose correlation peaks locate nothing, and
    a lead followed such a peak 200 ms off on seed 16 of the default rig. Locked windows keep the whole envelope
    (with it, the locked p95 of IMU<->video rose on 8 of 8 seeds tried). 0 turns it off, seconds (default 0.1)."""
    acquire_one_sided: bool = True
    """Before the first lock, a sensor's window against a microphone (impact envelopes) whose one half peaks at
    the window's lag on its own while the other half has nothing to say (`low_corr`, `ambiguous`, `silent`: the
    sensor's object made no contact there) counts, carried by that half; windows carried by one half each lock
    only when two of those halves share no data. A half that points elsewhere still rejects the window. Cameras
    on a sensor's cells keep both halves (replayed on seeds 1-56 of the default rig, one-sided windows made 3
    more of the cameras' 112 first locks, 190-202 ms wrong) (default true)."""
    acquire_coincidence: float = 0.01
    """Before a sensor's first lock on a microphone (impact envelopes): a window whose lag puts more of the
    sensor's contacts onto the microphone's impacts than chance would line up at any lag of the search (the
    bound of `engine.coincidence` at most this) counts towards the lock whatever its prominence, and when
    carried by one half, as a whole: the lag rests on several separate contacts, not on one event. 0 turns it
    off (default 0.01)."""
    acquire_split_span_s: float = 1.0
    """The span `acquire_span_s` asks of the agreeing windows of a first lock where each window's halves were
    tested on their own (a sensor on a camera's cells, a sensor's impacts on a microphone's): each window is
    cross-validated already, so 1 s of new data (two hops) confirms it. Default rig, seeds 1-56 (before
    `overlap_sigma`): every stream settled within 10 s on 14 seeds (10 with 2 s), median 13.8 s (15.6 s), no new
    lock that was wrong, seconds (default 1)."""
    audio_drift: bool = True
    """Publish the drift of a clock that has a microphone locked to the anchor microphone by raw audio from what
    content sync put at the same instant (`engine.rate`): the median slope, over 10 s, of (this device's time,
    the anchor device's time) pairs of the last 60 s, once they span 20 s, times the anchor's own drift; every
    stream of that clock (the camera beside the microphone) publishes it. The clock models' slopes against the
    host carry the host's load (1-5 ppm live); off, or without such a microphone, the clock models' drift is
    published (default true)."""
    publish_lead: bool = True
    """Before a stream's first lock, publish the lag its windows point at (its *lead*, method `lead`) instead of
    the clock's mapping, which misses the whole capture latency: the newest window that counts towards the lock
    (with those that agree with it), else two windows of consecutive hops that agree (where the two newest
    disagree, the two before them), a window whose halves disagreed or whose peak is broader than its content
    explains included; only where both streams are compared on a feature they sense alike. Never settled, with
    the clock's uncertainty: the lock's tests still decide what is known, and nothing the engine measures
    changes. A stream measured against one that publishes a lead moves with it. Default rig, seeds 1-56 (57-84):
    every stream within its floor by 10 s on 42 seeds (21) instead of 35 (15); before their first settled flag,
    the cameras' and the IMU's offsets within their floor 37-60 % of the time (11-45 % on the clock's mapping),
    but once in 32-72 events more than 20 ms worse than that mapping, at worst about 200 ms off
    (docs/engine-log.md, "Leads before the first lock", "Broad windows lead, and one window does not break a
    lead") (default true)."""
    audit_search: bool = True
    """A locked stream whose window finds nothing around its lock while both streams have content (`low_corr`,
    `edge`, `ambiguous`, `broad`) searches that window again as widely as for a first lock, if the window holds
    its whole length of data (not one growing again after a clock jump or restart); a lag found there with
    `acquire_prominence` (and, for a sensor on a camera's cells, in both halves) goes to the smoother: beyond its
    gate it is an outlier, and `relock_hops` consecutive ones re-lock. Without it a capture latency that changes
    by more than the locked search (20 ms for audio, a few frames for a sensor on a camera), or a lock that was
    wrong, is never seen (default true)."""
    far_peak_search: bool = True
    """Every locked audio pair's window is searched again as widely as for a first lock, and the wider search's peak
    is taken where it lies beyond the locked search, has a first lock's prominence and correlates better than the
    local one: a capture latency that steps by more than the locked search leaves a window a local peak (at the old
    lag while the older part of the window holds the louder events, then a weaker one between), and the windows
    reach the range's edge, where `audit_search` looks wider, only seconds later (latency rig seed 7: a camera
    microphone's 50 ms step peaked 9-14 ms off for 4 s; seed 1: within 1.2 ms of the old lag until 3.1 s after
    it; docs/engine-log.md, "A step beyond the locked search", "Every locked audio window searched wide")
    (default true)."""
    step_halves: bool = True
    """A locked sensor's window against a microphone (impact envelopes) whose lag lies beyond the lock's gate
    counts as an outlier, towards a re-lock, when its halves show a step: the newer half carries the new lag on its
    own while the older one peaks at the lock. Without it such a window must show the new lag in both halves, which
    a window that holds the step does not, so a sensor's own capture latency change waited for windows wholly
    after it (8 s windows) (docs/engine-log.md, "A step in a sensor's halves") (default true)."""
    min_peakiness: float = 0.0
    """Least ``max / mean`` of both activity envelopes in a window: below it nothing stands out of the noise
    and the window is `no_events`. About 2 for steady noise; the simulator's audio with events reaches only
    2.5-7 (its ambience is dense in onsets), so the default 0 leaves this to the correlation tests (default 0)."""
    confidence_scale_s: float = 0.001
    """Confidence of a content estimate is ``scale / (scale + uncertainty_s)``, decaying with the age of the last
    informative window, seconds (default 0.001)."""
    confirm_updates: int = 10
    """A content lock with fewer accepted windows than this is dropped (back to clock sync, acquiring again)
    when it sees no informative window for `timeout_s`; a confirmed one keeps its correction (default 10)."""
    overlap_sigma: bool = True
    """The smoother weighs a lag measured on kinetic or impact envelopes (8 s windows of a few events each) with
    its sigma times ``sqrt(window / hop)``: consecutive windows share all but one hop of their data, so their
    errors are not independent, and counted as independent they made the smoother sure of a lock within hops
    (0.6 ms on default-rig seed 2, 14 ms off) and slow to follow the windows once the content showed the truth.
    The outlier gate keeps the window's own sigma, so a step of the truth still re-locks. Audio pairs are
    weighed as before (default true)."""
    gate_sigmas: float = 6.0
    """Innovations beyond this many predicted standard deviations are outliers (default 6)."""
    relock_hops: int = 3
    """Consecutive consistent outliers after which the smoother re-locks on them, at least (default 3); the engine
    asks for as many as span `acquire_span_s` (5 at the default hop), and more for longer windows."""
    rate_prior_ppm: float = 20.0
    """Prior spread of the drift the content smoother must find on top of the clock model's, ppm (default 20;
    the offline API, which has no clock model, uses 500)."""
    drift_noise_ppm_per_s: float = 0.05
    """Process noise of the drift state, ppm per sqrt(second) (default 0.05)."""
    offset_noise_s_per_s: float = 1e-5
    """Process noise of the offset state, seconds per sqrt(second) (default 1e-5)."""
    timeout_s: float = 10.0
    """Without an informative window for this long the stream falls back to method `clock`, seconds (default 10)."""
    coarse_max_offset_s: float = 300.0
    """Largest offset the coarse global search (no usable timestamps) considers, seconds (default 300)."""
    coarse_grid_s: float = 0.01
    """Grid of the coarse global search, seconds (default 0.01)."""
    coarse_online: bool = False
    """Online, run the coarse global search over the feature history when a stream's first windows all peak at
    the edge of the search range (its timestamps are off by more than `prior_latency_s` even after clock sync).
    Off by default: a global search over a short history can lock onto a wrong repeat of the content."""
    history_s: float = 120.0
    """Feature history kept per stream for the coarse search, seconds (default 120)."""
    raw_audio_refine: bool = True
    """Refine audio-to-audio lags by GCC-PHAT on the raw samples (sub-millisecond)."""
    sensor_to_video: bool = True
    """A sensor stream without a configured partner (`partners`, ``sync_to``) is aligned to the fastest camera
    of its session, comparing its acceleration magnitude with the camera's change of motion energy (what both
    see of a velocity change); off, or with no camera, it is aligned to the anchor (default true)."""
    sensor_bridge: bool = True
    """Where the session's anchor is a microphone: a sensor without a configured partner is aligned to it by
    impacts (the start of a contact, as the microphone hears it and the sensor on the struck object feels it:
    `features.impact`), and a camera without one to such a sensor by velocity changes (kinetic envelopes, the
    camera's cells weighted against the sensor): the fastest; with several, a camera not locked yet takes them
    in turn, one per hop, and stays with the one it locks with. A sensor on a moving object then bridges what a
    camera sees and what a microphone hears: a camera's motion peaks in the middle of a velocity change, its sound
    at the start, so cameras compared with microphones directly find nothing reliable. Off, a sensor goes to the
    fastest camera (`sensor_to_video`) and cameras to the anchor (default true)."""
    contact_response: bool = True
    """With the sensor bridge: a sensor locked to the microphone learns the response that turns the microphone's
    impacts (contact starts) into its kinetic envelope (the velocity changes that follow: `engine.response`), and
    once that rests on `response_min_s` of learning a camera aligned to the sensor is weighed against every
    contact the microphone hears, through that response, instead of the sensor's own envelope: the microphone
    hears every object, the sensor feels one. It assumes the other objects' contacts take the sensor's object's
    time course (default true)."""
    source_conflict: bool = True
    """A locked camera whose window through its sensor's contact response is informative is also measured against
    the sensor itself; where that window is informative too and the two lags differ by more than a quarter of the
    camera's frame, the hop takes neither (`conflict`) and the smoother holds. On the default rig's seeds 1-56 (25
    s), at such hops the lock was within the floor on 95-96 % of them, the window through the response on 65-78 %,
    and that window was nearer the truth than the lock on 13-27 % (docs/engine-log.md, "Two sources that disagree")
    (default true)."""
    source_memory: float = 0.5
    """With `source_conflict`: at a hop where one of a locked camera's two sources says nothing, its last
    informative lag (as a correction) stands for it for this fraction of the camera's window (whose data the two
    windows mostly share), and the other source's window is not taken either (`conflict`) where it lies more
    than a quarter frame from the lock, and from that lag by more than a quarter frame and 3 of their combined
    sigmas. 0: only the hop's own two windows are compared (docs/engine-log.md, "A source's last word")
    (default 0.5)."""
    wide_last_word: bool = True
    """With `source_memory`: a locked camera's window of the wide search (`audit_search`) is held against the
    silent source's last word too, unless that source's own peak of the wide search, though not informative, lies
    with it (within a quarter frame and 3 of their combined sigmas): a step of the camera's latency moves both
    sources' peaks, a chance repeat of the scene in one source does not. Without it the wide search re-locked
    default-rig seed 166's cam1 159 ms off for 5 s on two kicks of another object that followed two of the sensor's
    by 157-161 ms (docs/engine-log.md, "The last word in the wide search") (default true)."""
    response_min_s: float = 6.0
    """Seconds of data a sensor must have learned its contact response from before a camera is weighed through it:
    with perfect clocks, 6 s of the default rig put 84 % of cam1's windows within a quarter frame (60 s: 88 %,
    4 s: 77 %); in the engine, seeds 1-56: settle within 10 s on 32 seeds with 6 s, 28 with 8 s; with 4 s 32 too,
    but video<->audio and IMU<->video within the floor on 54 seeds instead of 56 and 55 (default 6)."""
    impact_window_s: float = 8.0
    """Length of the window of a sensor-microphone pair (impact envelopes), seconds: only the contacts of the
    sensor's own object are shared (default 8)."""
    impact_min_corr: float = 0.15
    """`min_corr` of a sensor-microphone window: the microphone hears every contact, the sensor feels only its
    object's, so the correlation peaks lower (0.2-0.4 on the simulator's rigs) while it stands out as far; the
    prominence tests are unchanged (default 0.15)."""
    cell_weighting: bool = True
    """A sensor aligned to a camera is compared with the best linear combination of the camera's per-cell (4x4)
    kinetic envelopes in each window (a one-sided CCA: the cells that see the sensor's object weighted in), not
    with their sum; off compares with the sum (default true)."""
    cell_ridge: float = 0.1
    """Ridge of that weighting, as a fraction of the mean cell energy: shrinks the weights and the correlation
    chance gives 16 free weights (default 0.1)."""
    event_lags: bool = True
    """Once a camera is locked, its window against a sensor (its own, or the contacts the microphone heard through
    the sensor's response) takes the weighted median of its events' own lags where it holds at least three
    (`engine.events`), not the cross-correlation peak, their energy-weighted mean, which one event far off pulls;
    with fewer, the peak's lag stands, no surer than `event_sigma_s` over the square root of their number. Before
    the first lock the peak's lag goes through acquisition's own tests unchanged. Default rig, seeds 1-56: both
    camera floors on 56 seeds instead of 55, every floor on 51 instead of 49 (docs/engine-log.md, "One event at a
    time") (default true)."""
    event_sigma_s: float = 0.003
    """One event's timing scatter between a camera's kinetic envelope and a sensor's: the robust standard
    deviation of 344 kicks' lags on the default rig, seeds 1-20 (`tools/engine/contact_timing.py`), seconds
    (default 0.003)."""
    event_min_corr: float = 0.5
    """Least correlation of one event's own peak for it to count: below it the camera did not see the event
    (default 0.5)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.acquire_coincidence <= 1.0:
            # a bound on a probability: above 1 every informative window would count, below 0 none
            raise ValueError(f"acquire_coincidence must be within [0, 1], got {self.acquire_coincidence}")
        if not self.source_memory >= 0.0:
            # a fraction of a window: 0 turns the memory off, a negative one means nothing
            raise ValueError(f"source_memory must be >= 0, got {self.source_memory}")
        if not self.acquire_highpass_s >= 0.0:
            # a sigma: 0 turns the filter off, a negative one means nothing
            raise ValueError(f"acquire_highpass_s must be >= 0, got {self.acquire_highpass_s}")


@dataclass(frozen=True)
class FeatureConfig:
    """[engine.features]: how each modality becomes an activity envelope on an explicit time axis."""

    audio_hop_ms: float = 1.0
    """Audio energy/onset envelope hop, milliseconds (default 1)."""
    sensor_highpass_hz: float = 0.5
    """High-pass corner for sensor magnitudes, Hz (default 0.5)."""
    impact_lookback_ms: float = 5.0
    """An audio block's impact strength is its rise over the loudest block of this much time before it,
    milliseconds (default 5; `features.impact`)."""
    impact_smooth_s: float = 0.001
    """The Gaussian smoothing of impact envelopes (sensor-microphone pairs) instead of `smooth_s`, seconds: a
    contact's start is a single sharp rise in both, while the sensor's jerk also rises gradually towards a soft
    contact's end; at 4 ms that smeared rise weighs as much as the start, and a window can peak 30 ms late
    (default 0.001)."""
    smooth_s: float = 0.004
    """Gaussian smoothing (sigma) applied to every envelope on the common grid before alignment, seconds
    (default 0.004)."""
    motion_baseline_frames: int = 2
    """The kinetic envelope of raw video frames (what a sensor aligned to the camera is compared with) is taken
    from motion energy between frames this far apart (``mean |f_k - f_{k-B}|`` per cell): a small, slow object's
    motion stands B times as high above sensor noise, at B frames of time resolution; the sensor is smoothed to
    match (default 2; 1 is plain frame differences). The activity envelope (compared with audio) stays on
    consecutive frames; streams sending motion vectors (``units`` = motion) are not affected."""
    motion_kinetic: str = "flow"
    """What the kinetic envelope of raw video frames follows: ``flow``, each cell's motion vector (the frame
    difference projected on the picture's gradient, linear in velocity), or ``energy``, each cell's motion energy
    (not linear in speed near the noise floor: launches peak late and stops early against a sensor). Streams
    sending motion vectors always use energy (default flow; `features.video`)."""

    def __post_init__(self) -> None:
        if self.motion_baseline_frames < 1:
            raise ValueError(f"motion_baseline_frames must be >= 1, got {self.motion_baseline_frames}")
        if self.motion_kinetic not in ("flow", "energy"):
            raise ValueError(f"motion_kinetic must be flow or energy, got {self.motion_kinetic!r}")
        if not self.impact_lookback_ms > 0:
            raise ValueError(f"impact_lookback_ms must be > 0, got {self.impact_lookback_ms}")


@dataclass(frozen=True)
class BundleConfig:
    """[engine.bundle]: `sync.bundle` synchronized sets (ROS ApproximateTime guarantees)."""

    enabled: bool = True
    """Publish `sync.bundle` events."""
    tick_hz: float = 0.0
    """Bundle tick rate on the reference timeline, Hz; 0 uses the slowest member's rate (so that every member
    can contribute a fresh sample to every tick), capped at `max_tick_hz` (default 0)."""
    max_tick_hz: float = 60.0
    """Highest bundle rate when `tick_hz` is 0, Hz (default 60)."""
    max_wait_s: float = 0.1
    """A tick is published at most this long (host time) after it could first have been, with `incomplete`
    set and the late streams named, seconds (default 0.1)."""
    max_residual_s: float = 0.0
    """A member farther than this from the tick is missing; 0 means half the member's sample period, seconds
    (default 0)."""


@dataclass(frozen=True)
class SessionConfig:
    """[engine.sessions.NAME]: a rig declared in config (streams may also join by their `session` metadata)."""

    reference: str = ""
    """Reference stream id; empty means the host clock."""
    anchor: str = ""
    """Content anchor when the reference is the host clock: the stream others are content-aligned to;
    empty means the first audio stream to open (or the first stream)."""
    streams: tuple[str, ...] = ()
    """Streams that belong to this session whatever their metadata says."""
    partners: dict[str, str] = field(default_factory=dict)
    """stream -> stream it is content-aligned to (e.g. an IMU to its camera); default the anchor."""


@dataclass(frozen=True)
class EngineConfig:
    enabled: bool = True
    """Run the sync engine (clock and content sync) in the service."""
    default_session: str = "default"
    """Session of streams whose metadata names none."""
    clock: ClockConfig = field(default_factory=ClockConfig)
    """Clock sync from timestamps."""
    content: ContentConfig = field(default_factory=ContentConfig)
    """Content sync."""
    features: FeatureConfig = field(default_factory=FeatureConfig)
    """Feature extraction."""
    bundle: BundleConfig = field(default_factory=BundleConfig)
    """Synchronized sets."""
    sessions: dict[str, SessionConfig] = field(default_factory=dict)
    """Sessions declared in config, by name."""
    publish_every_s: float = 0.5
    """`sync.offset` is published per stream at most this often (and on every method or settled change),
    seconds of host time (default 0.5)."""
    stall_s: float = 2.0
    """A stream with no chunk for this long (host time) is reported `stalled`, seconds (default 2)."""
