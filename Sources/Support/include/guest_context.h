// A vcpu's context page: the guest state the VMCB does not hold. Shared by vmrun.S and Swift
// (X86/SVM/GuestRegisters.swift); one 4 KiB page per vcpu.
#pragma once

#define GC_RBX  0x00
#define GC_RCX  0x08
#define GC_RDX  0x10
#define GC_RSI  0x18
#define GC_RDI  0x20
#define GC_RBP  0x28
#define GC_R8   0x30
#define GC_R9   0x38
#define GC_R10  0x40
#define GC_R11  0x48
#define GC_R12  0x50
#define GC_R13  0x58
#define GC_R14  0x60
#define GC_R15  0x68
#define GC_FPU  0x200      // 512-byte FXSAVE area, 16-byte aligned
#define GC_SIZE 0x400
