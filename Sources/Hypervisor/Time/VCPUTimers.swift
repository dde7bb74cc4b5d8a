import XenABI

/// What the architecture layer provides for time: the hypervisor's system clock and one
/// hardware timer per vcpu's earliest deadline.
public protocol TimePlatform: AnyObject {
  /// Hypervisor system time: nanoseconds since boot, the base of every guest's vcpu_time_info
  /// and of every deadline a guest gives.
  func now() -> UInt64
  /// Arms the timer of `vcpu` for `deadline` (replacing the one armed before), or cancels it
  /// when `deadline` is `.max`. When it fires, the arch calls `VCPUTimers.expire(vcpu, now:)`.
  /// Called with `vcpu.timerLock` held.
  func arm(_ vcpu: VCPU, at deadline: UInt64)
}

public enum SystemTime {
  /// Set by the arch layer once the TSC is calibrated. Nil (host builds): time stands at 0.
  nonisolated(unsafe) public static var platform: (any TimePlatform)?

  public static func now() -> UInt64 {
    guard let platform = unsafe platform else { return 0 }
    return platform.now()
  }
}

/// The timers a Xen guest sets on its own vcpus (docs/time.md): a one-shot deadline
/// (VCPUOP_set_singleshot_timer, set_timer_op), a periodic timer (VCPUOP_set_periodic_timer)
/// and the timeout of SCHEDOP_poll. Each vcpu has one armed hardware timer, for the earliest.
/// On expiry the one-shot and periodic timers raise VIRQ_TIMER on the vcpu; a poll timeout
/// wakes the polling vcpu.
public enum VCPUTimers {
  /// The shortest period (Xen's: VCPUOP_set_periodic_timer refuses less with -EINVAL), so a
  /// periodic timer cannot keep a pcpu busy with interrupts.
  public static let minimumPeriod: UInt64 = 1_000_000
  /// The longest period (Xen's STIME_DELTA_MAX, 2^62 - 1 ns, so that now + period cannot
  /// overflow a signed 64-bit time): VCPUOP_set_periodic_timer refuses more with -EINVAL.
  public static let maximumPeriod: UInt64 = (1 << 62) - 1

  /// A deadline that has already passed fires now, from the hypercall, as Xen's set_timer
  /// does: the event is pending when the vcpu re-enters, with no timer interrupt in between.
  public static func setSingleshot(_ vcpu: VCPU, deadline: UInt64) {
    vcpu.timerLock.withLock {
      vcpu.singleshotDeadline = max(deadline, 1)
      rearm(vcpu)
    }
    let now = SystemTime.now()
    if deadline <= now && now != 0 { expire(vcpu, now: now) }
  }

  public static func stopSingleshot(_ vcpu: VCPU) {
    vcpu.timerLock.withLock {
      vcpu.singleshotDeadline = 0
      rearm(vcpu)
    }
  }

  /// The first event one period from `now`, then every period.
  public static func setPeriodic(_ vcpu: VCPU, period: UInt64, now: UInt64) {
    vcpu.timerLock.withLock {
      let period = max(period, minimumPeriod)
      vcpu.periodicPeriod = period
      vcpu.periodicNext = now.addingSaturating(period)
      rearm(vcpu)
    }
  }

  public static func stopPeriodic(_ vcpu: VCPU) {
    vcpu.timerLock.withLock {
      vcpu.periodicPeriod = 0
      vcpu.periodicNext = 0
      rearm(vcpu)
    }
  }

  /// SCHEDOP_poll's timeout (0: none).
  public static func setPollTimeout(_ vcpu: VCPU, deadline: UInt64) {
    vcpu.timerLock.withLock {
      vcpu.pollDeadline = deadline
      rearm(vcpu)
    }
  }

  /// The virtual LAPIC's timer (docs/vlapic.md): first expiry at `deadline`, then every
  /// `period` ns (0: once). The period comes from `LocalAPICRegisters.timerSchedule`, which
  /// keeps it at or above `LocalAPICRegisters.minimumTimerPeriod`; the clamp here is a second
  /// line so no caller can arm a flood.
  public static func setLAPICTimer(_ vcpu: VCPU, deadline: UInt64, period: UInt64) {
    vcpu.timerLock.withLock {
      vcpu.lapicTimerNext = max(deadline, 1)
      vcpu.lapicTimerPeriod = period == 0 ? 0 : max(period, LocalAPICRegisters.minimumTimerPeriod)
      rearm(vcpu)
    }
  }

  public static func stopLAPICTimer(_ vcpu: VCPU) {
    vcpu.timerLock.withLock {
      vcpu.lapicTimerNext = 0
      vcpu.lapicTimerPeriod = 0
      rearm(vcpu)
    }
  }

  /// Every timer of the vcpu off (its domain is being destroyed, or the vcpu went down).
  public static func cancelAll(_ vcpu: VCPU) {
    vcpu.timerLock.withLock {
      vcpu.singleshotDeadline = 0
      vcpu.periodicPeriod = 0
      vcpu.periodicNext = 0
      vcpu.pollDeadline = 0
      vcpu.lapicTimerNext = 0
      vcpu.lapicTimerPeriod = 0
      rearm(vcpu)
    }
  }

  /// The earliest deadline set, or `.max`.
  static func earliest(_ vcpu: VCPU) -> UInt64 {
    var next = UInt64.max
    if vcpu.singleshotDeadline != 0 { next = min(next, vcpu.singleshotDeadline) }
    if vcpu.periodicPeriod != 0 { next = min(next, vcpu.periodicNext) }
    if vcpu.pollDeadline != 0 { next = min(next, vcpu.pollDeadline) }
    if vcpu.lapicTimerNext != 0 { next = min(next, vcpu.lapicTimerNext) }
    return next
  }

  /// With `timerLock` held.
  static func rearm(_ vcpu: VCPU) {
    unsafe SystemTime.platform?.arm(vcpu, at: earliest(vcpu))
  }

  /// The vcpu's armed timer fired (or may have): handle every deadline that has passed, arm
  /// the next. A periodic timer that fell behind by several periods fires once and skips the
  /// missed ones, as Xen does.
  public static func expire(_ vcpu: VCPU, now: UInt64) {
    var raiseTimer = false
    var pollTimedOut = false
    var lapicTimer = false
    vcpu.timerLock.withLock {
      if vcpu.singleshotDeadline != 0 && vcpu.singleshotDeadline <= now {
        vcpu.singleshotDeadline = 0
        raiseTimer = true
      }
      if vcpu.periodicPeriod != 0 && vcpu.periodicNext <= now {
        raiseTimer = true
        vcpu.periodicNext = vcpu.periodicNext.addingSaturating(vcpu.periodicPeriod)
        if vcpu.periodicNext <= now { vcpu.periodicNext = now.addingSaturating(vcpu.periodicPeriod) }
      }
      if vcpu.pollDeadline != 0 && vcpu.pollDeadline <= now {
        vcpu.pollDeadline = 0
        pollTimedOut = true
      }
      if vcpu.lapicTimerNext != 0 && vcpu.lapicTimerNext <= now {
        lapicTimer = true
        vcpu.lapicTimerExpiries &+= 1
        if vcpu.lapicTimerPeriod == 0 {
          vcpu.lapicTimerNext = 0
        } else {
          vcpu.lapicTimerNext = vcpu.lapicTimerNext.addingSaturating(vcpu.lapicTimerPeriod)
          if vcpu.lapicTimerNext <= now { vcpu.lapicTimerNext = now.addingSaturating(vcpu.lapicTimerPeriod) }
        }
      }
      rearm(vcpu)
    }
    if raiseTimer {
      vcpu.timerInterrupts &+= 1
      Events.raiseVIRQ(.timer, vcpu: vcpu)
    }
    if pollTimedOut { Events.wakePoller(vcpu) }
    if lapicTimer { LocalAPICDelivery.timerExpired(vcpu) }
  }
}
