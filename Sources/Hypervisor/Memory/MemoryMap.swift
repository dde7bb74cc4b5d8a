/// One entry of the firmware's physical memory map (an E820-style range and its type).
public struct MemoryRegion: Equatable, Sendable {
  /// What the firmware says a range is. The raw values are the E820 / PVH memory map types; the
  /// caller maps any type it does not know to `.reserved` before adding the region.
  public enum Kind: UInt32, Sendable {
    case ram = 1
    case reserved = 2
    case acpiReclaimable = 3
    case acpiNVS = 4
    case unusable = 5

    /// How strongly a kind forbids the hypervisor from using the memory. When firmware entries
    /// overlap, the higher rank wins: handing out memory that firmware also calls reserved is
    /// a far worse mistake than losing a little RAM. ACPI reclaimable ranks lowest after RAM
    /// because it becomes RAM once the tables are parsed; NVS must survive sleep, reserved is
    /// owned by firmware or devices, unusable is broken.
    var restrictiveness: Int {
      switch self {
      case .ram: 0
      case .acpiReclaimable: 1
      case .acpiNVS: 2
      case .reserved: 3
      case .unusable: 4
      }
    }
  }

  public var base: UInt64
  public var length: UInt64
  public var kind: Kind

  public init(base: UInt64, length: UInt64, kind: Kind) {
    self.base = base
    self.length = length
    self.kind = kind
  }

  /// One past the last byte: `base + length`, saturated at `UInt64.max` so a bogus length from
  /// firmware cannot wrap around to a small address.
  public var end: UInt64 {
    let (sum, overflow) = base.addingReportingOverflow(length)
    return overflow ? .max : sum
  }
}

/// The physical memory map, cleaned up: sorted by base, no overlaps, and adjacent regions of the
/// same kind merged. Firmware maps are often unsorted and sometimes overlapping; every consumer
/// (the frame allocator, the guest's own map) wants this normalized form.
public struct MemoryMap: Sendable {
  /// The normalized regions: sorted by base, non-overlapping, adjacent same-kind regions merged.
  public private(set) var regions: [MemoryRegion] = []

  public init() {}

  /// Adds a firmware entry. Where it overlaps what is already there, the more restrictive kind
  /// wins (anything that is not RAM beats RAM). Zero-length entries are ignored.
  public mutating func add(_ region: MemoryRegion) {
    let newStart = region.base
    let newEnd = region.end
    guard newStart < newEnd else { return }

    var result: [MemoryRegion] = []
    result.reserveCapacity(regions.count + 3)
    // The part of the new region not yet covered by an existing one starts here.
    var uncovered = newStart
    for old in regions {
      let oldStart = old.base
      let oldEnd = old.end
      if oldEnd <= newStart || oldStart >= newEnd {
        result.append(old)
        continue
      }
      // `old` overlaps: keep its parts outside the new region, resolve the shared part.
      if oldStart < newStart {
        result.append(Self.region(oldStart, newStart, old.kind))
      }
      let sharedStart = max(oldStart, newStart)
      let sharedEnd = min(oldEnd, newEnd)
      if uncovered < sharedStart {
        result.append(Self.region(uncovered, sharedStart, region.kind))
      }
      let winner = old.kind.restrictiveness >= region.kind.restrictiveness ? old.kind : region.kind
      result.append(Self.region(sharedStart, sharedEnd, winner))
      uncovered = sharedEnd
      if oldEnd > newEnd {
        result.append(Self.region(newEnd, oldEnd, old.kind))
      }
    }
    if uncovered < newEnd {
      result.append(Self.region(uncovered, newEnd, region.kind))
    }

    result.sort { $0.base < $1.base }
    regions = Self.mergingAdjacent(result)
  }

  /// Total bytes of RAM.
  public var totalRAM: UInt64 {
    var total: UInt64 = 0
    for region in regions where region.kind == .ram {
      total &+= region.length
    }
    return total
  }

  /// One past the last byte of the highest RAM region, or 0 if there is no RAM.
  public var highestRAMAddress: UInt64 {
    var highest: UInt64 = 0
    for region in regions where region.kind == .ram {
      highest = max(highest, region.end)
    }
    return highest
  }

  /// The RAM that is free to hand out: RAM minus every `excluded` range (the hypervisor image,
  /// boot modules, ...). Each remaining piece is shrunk inward to 4 KiB alignment, because a
  /// frame that is only partly free cannot be given away. Empty pieces are dropped; the result is
  /// sorted by address and non-overlapping.
  public func usableRanges(excluding excluded: [Range<UInt64>]) -> [Range<UInt64>] {
    var pieces: [Range<UInt64>] = []
    for region in regions where region.kind == .ram {
      pieces.append(region.base..<region.end)
    }
    for cut in excluded where !cut.isEmpty {
      var remaining: [Range<UInt64>] = []
      remaining.reserveCapacity(pieces.count + 1)
      for piece in pieces {
        if cut.upperBound <= piece.lowerBound || cut.lowerBound >= piece.upperBound {
          remaining.append(piece)
          continue
        }
        if piece.lowerBound < cut.lowerBound {
          remaining.append(piece.lowerBound..<cut.lowerBound)
        }
        if cut.upperBound < piece.upperBound {
          remaining.append(cut.upperBound..<piece.upperBound)
        }
      }
      pieces = remaining
    }

    var usable: [Range<UInt64>] = []
    for piece in pieces {
      if let aligned = Self.shrunkToPages(piece) {
        usable.append(aligned)
      }
    }
    return usable
  }

  // MARK: - Helpers

  static let pageSize: UInt64 = 4096

  /// `range` with its start rounded up and its end rounded down to 4 KiB, or nil if nothing
  /// whole is left.
  static func shrunkToPages(_ range: Range<UInt64>) -> Range<UInt64>? {
    let mask = pageSize - 1
    let (roundedUp, overflow) = range.lowerBound.addingReportingOverflow(mask)
    if overflow { return nil }
    let start = roundedUp & ~mask
    let end = range.upperBound & ~mask
    return start < end ? start..<end : nil
  }

  private static func region(_ start: UInt64, _ end: UInt64, _ kind: MemoryRegion.Kind) -> MemoryRegion {
    MemoryRegion(base: start, length: end - start, kind: kind)
  }

  /// Joins neighbours that touch and have the same kind. `sorted` must be sorted and disjoint.
  private static func mergingAdjacent(_ sorted: [MemoryRegion]) -> [MemoryRegion] {
    var merged: [MemoryRegion] = []
    merged.reserveCapacity(sorted.count)
    for region in sorted {
      if let last = merged.last, last.kind == region.kind, last.end == region.base {
        merged[merged.count - 1].length += region.length
      } else {
        merged.append(region)
      }
    }
    return merged
  }
}
