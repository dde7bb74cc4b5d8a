// The shared info page and vcpu_info, from xen/include/public/xen.h and
// arch-x86/xen-x86_64.h / arch-x86/xen.h.
//
// shared_info is one page the guest maps with XENMEM_add_to_physmap(XENMAPSPACE_shared_info).
// It holds the first 32 vcpus' vcpu_info, the 2-level event channel bitmaps and the wallclock.
// The hypervisor writes it while the guest runs, so updates to pending bits must be atomic.

import XenPublic

extension XenABI {
  /// MAX_VIRT_CPUS on x86: vcpus whose vcpu_info lives in shared_info. Later vcpus need
  /// VCPUOP_register_vcpu_info.
  public static let maxVirtualCPUsInSharedInfo = 32

  /// NR_EVENT_CHANNELS for the 2-level ABI on x86_64: 64 words of 64 bits.
  public static let eventChannelCount2Level = 4096

  /// `struct vcpu_time_info`: the per-vcpu clock (pvclock). 32 bytes.
  public enum VCPUTimeInfo {
    public static let size = Int(XEN_VCPU_TIME_INFO_SIZE)
    public enum Offset {
      /// u32; odd while an update is in progress (a seqlock).
      public static let version = Int(XEN_VCPU_TIME_INFO_VERSION)
      public static let pad0 = 4
      /// u64, TSC at the last update.
      public static let tscTimestamp = Int(XEN_VCPU_TIME_INFO_TSC_TIMESTAMP)
      /// u64, ns since boot at the last update.
      public static let systemTime = Int(XEN_VCPU_TIME_INFO_SYSTEM_TIME)
      /// u32: ns = ((tsc - tscTimestamp) << shift) * mul >> 32, shifting right if shift < 0.
      public static let tscToSystemMul = Int(XEN_VCPU_TIME_INFO_TSC_TO_SYSTEM_MUL)
      /// i8.
      public static let tscShift = Int(XEN_VCPU_TIME_INFO_TSC_SHIFT)
      /// u8, `flags` (pad1[0] in older headers).
      public static let flags = Int(XEN_VCPU_TIME_INFO_FLAGS)
    }
    /// XEN_PVCLOCK_TSC_STABLE_BIT: the TSC is synchronised across vcpus.
    public static let tscStableFlag: UInt8 = 1 << 0
    /// XEN_PVCLOCK_GUEST_STOPPED.
    public static let guestStoppedFlag: UInt8 = 1 << 1
  }

  /// `struct arch_vcpu_info` on x86_64. 16 bytes.
  public enum ArchVCPUInfo {
    public static let size = Int(XEN_ARCH_VCPU_INFO_SIZE)
    public enum Offset {
      public static let cr2 = 0  // unsigned long (PV)
      public static let pad = 8  // unsigned long
    }
  }

  /// `struct vcpu_info` on x86_64. 64 bytes.
  public enum VCPUInfo {
    public static let size = Int(XEN_VCPU_INFO_SIZE)
    public enum Offset {
      /// u8, set by the hypervisor when an upcall is pending; cleared by the guest.
      public static let upcallPending = Int(XEN_VCPU_INFO_UPCALL_PENDING)
      /// u8, the guest's "interrupts off" for event upcalls.
      public static let upcallMask = Int(XEN_VCPU_INFO_UPCALL_MASK)
      /// unsigned long: bit i set = word i of evtchn_pending may have unmasked pending bits.
      public static let pendingSelector = Int(XEN_VCPU_INFO_PENDING_SEL)
      /// `ArchVCPUInfo`.
      public static let arch = Int(XEN_VCPU_INFO_ARCH)
      /// `VCPUTimeInfo`.
      public static let time = Int(XEN_VCPU_INFO_TIME)
    }
  }

  /// `struct arch_shared_info` on x86_64. 48 bytes.
  public enum ArchSharedInfo {
    public static let size = Int(XEN_ARCH_SHARED_INFO_SIZE)
    public enum Offset {
      public static let maxPFN = 0                  // unsigned long
      public static let pfnToMFNFrameListList = 8   // xen_pfn_t
      public static let nmiReason = 16              // unsigned long
      public static let p2mCR3 = 24                 // unsigned long
      public static let p2mVaddr = 32               // unsigned long
      public static let p2mGeneration = 40          // unsigned long
    }
  }

  /// `struct shared_info` on x86_64. 3136 bytes (fits in one page).
  public enum SharedInfo {
    public static let size = Int(XEN_SHARED_INFO_SIZE)
    public enum Offset {
      /// `VCPUInfo`[32].
      public static let vcpuInfo = Int(XEN_SHARED_INFO_VCPU_INFO)
      /// unsigned long[64]: the 2-level event channel pending bitmap.
      public static let evtchnPending = Int(XEN_SHARED_INFO_EVTCHN_PENDING)
      /// unsigned long[64]: the 2-level event channel mask bitmap.
      public static let evtchnMask = Int(XEN_SHARED_INFO_EVTCHN_MASK)
      /// u32; odd while the wallclock is being updated.
      public static let wcVersion = Int(XEN_SHARED_INFO_WC_VERSION)
      /// u32, seconds since 1970 at system time 0 (low 32 bits).
      public static let wcSec = Int(XEN_SHARED_INFO_WC_SEC)
      /// u32.
      public static let wcNsec = Int(XEN_SHARED_INFO_WC_NSEC)
      /// u32, high 32 bits of the seconds (x86_64 only; 32-bit guests find it in arch).
      public static let wcSecHi = Int(XEN_SHARED_INFO_WC_SEC_HI)
      /// `ArchSharedInfo`.
      public static let arch = Int(XEN_SHARED_INFO_ARCH)
    }
    /// Byte offset of vcpu `index`'s vcpu_info (index < 32).
    public static func vcpuInfoOffset(_ index: Int) -> Int {
      Offset.vcpuInfo + index * VCPUInfo.size
    }
  }
}

extension XenABI {
  /// The shared pages in the compat layout (`struct compat_shared_info`, `compat_vcpu_info`):
  /// what a domain whose shared_info is 32-bit (Xen's has_32bit_shinfo) sees. Event words are
  /// 32 bits, so the 2-level ABI has 32 × 32 ports; the upcall bytes and the time info are
  /// where they are in the native layout.
  public enum Compat {
    /// BITS_PER_EVTCHN_WORD for a 32-bit shared_info.
    public static let eventWordBits = Int(XEN_COMPAT_EVTCHN_WORD_BITS)
    /// The 2-level port count for a 32-bit shared_info: one selector word of pending words.
    public static let eventChannelCount2Level = eventWordBits * eventWordBits

    public enum VCPUInfo {
      public static let size = Int(XEN_COMPAT_VCPU_INFO_SIZE)
      public enum Offset {
        public static let upcallPending = Int(XEN_COMPAT_VCPU_INFO_UPCALL_PENDING)
        public static let upcallMask = Int(XEN_COMPAT_VCPU_INFO_UPCALL_MASK)
        /// u32: bit i set = word i of evtchn_pending may have unmasked pending bits.
        public static let pendingSelector = Int(XEN_COMPAT_VCPU_INFO_PENDING_SEL)
        public static let time = Int(XEN_COMPAT_VCPU_INFO_TIME)
      }
    }

    public enum SharedInfo {
      public enum Offset {
        public static let vcpuInfo = Int(XEN_COMPAT_SHARED_INFO_VCPU_INFO)
        /// u32[32].
        public static let evtchnPending = Int(XEN_COMPAT_SHARED_INFO_EVTCHN_PENDING)
        /// u32[32].
        public static let evtchnMask = Int(XEN_COMPAT_SHARED_INFO_EVTCHN_MASK)
        public static let wcVersion = Int(XEN_COMPAT_SHARED_INFO_WC_VERSION)
        public static let wcSec = Int(XEN_COMPAT_SHARED_INFO_WC_SEC)
        public static let wcNsec = Int(XEN_COMPAT_SHARED_INFO_WC_NSEC)
        /// u32, in arch (compat_arch_shared_info.wc_sec_hi).
        public static let wcSecHi = Int(XEN_COMPAT_SHARED_INFO_WC_SEC_HI)
      }
    }
  }
}
