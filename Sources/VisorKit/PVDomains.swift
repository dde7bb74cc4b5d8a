/// The xl.cfg texts of a Linux driver domain and of a Linux frontend with PV devices, as the demo,
/// `visor bench pv` and the PV system tests boot them (examples/driver-domain.cfg is the same
/// driver domain written by hand; docs/pv-devices.md).
public enum PVDomains {
  /// `drv`: the cloud kernel with the driver initramfs (scripts/fetch-linux). Its memory holds
  /// the kernel, the initramfs and every disk image packed into it.
  public static func driver(kernel: String, initramfs: String, memory: Int = 256, cmdline: String = "console=hvc0 loglevel=4") -> String {
    """
    name = "drv"
    type = "pvh"
    driver_domain = 1
    memory = \(memory)
    vcpus = 1
    kernel = "\(kernel)"
    ramdisk = "\(initramfs)"
    cmdline = "\(cmdline)"

    """
  }

  /// A frontend: the cloud kernel with the test initramfs, a vif on xenbr0 at `address`/24 (set by
  /// its /init from `swiftvisor.ip=`) and, with `disk`, xvda from that image read-write, both
  /// served by `drv`.
  public static func frontend(
    name: String, kernel: String, initramfs: String, address: String, disk: String?,
    memory: Int = 256, vcpus: Int = 1, cmdline: String = "console=hvc0 loglevel=4"
  ) -> String {
    var text = """
      name = "\(name)"
      type = "pvh"
      memory = \(memory)
      vcpus = \(vcpus)
      kernel = "\(kernel)"
      ramdisk = "\(initramfs)"
      cmdline = "\(cmdline) swiftvisor.ip=\(address)/24"
      vif = [ 'bridge=xenbr0, backend=drv' ]

      """
    if let disk { text += "disk = [ 'vdev=xvda, format=raw, access=rw, backend=drv, target=\(disk)' ]\n" }
    return text
  }
}
