import { familiesCoveredEntirely, parseCidr } from "../../constructs/service/cidr";

describe("CIDR lists read as addresses", () => {
  it("parses IPv4 and IPv6 blocks, ignoring host bits as the clouds do", () => {
    expect(parseCidr("10.1.2.3/8")).toEqual({ family: 4, first: 0x0a000000n, last: 0x0affffffn });
    expect(parseCidr("2001:db8::/32")).toEqual({ family: 6, first: 0x20010db8n << 96n, last: ((0x20010db8n + 1n) << 96n) - 1n });
    expect(parseCidr("::ffff:10.0.0.0/104")).toEqual({ family: 6, first: 0xffff0a000000n, last: 0xffff0affffffn });
  });

  it.each(["10.0.0.0", "10.0.0.0/33", "256.0.0.0/8", "::/129", "::g/64", "10.0.0.0/8 ", ""])("refuses %j", (text) => {
    expect(parseCidr(text)).toBeUndefined();
  });

  it.each([
    [["0.0.0.0/0"], ["IPv4"]],
    [["0::/0"], ["IPv6"]],
    [["0.0.0.0/1", "128.0.0.0/1"], ["IPv4"]],
    [["128.0.0.0/1", "0.0.0.0/2", "64.0.0.0/3", "96.0.0.0/3"], ["IPv4"]],
    [["0.0.0.0/1", "128.0.0.1/1"], ["IPv4"]],
    [
      ["0.0.0.0/0", "::/0"],
      ["IPv4", "IPv6"],
    ],
    [["0.0.0.0/1", "128.0.0.0/2"], []],
    [["0.0.0.0/1", "192.0.0.0/2"], []],
    [["203.0.113.7/32"], []],
    [[], []],
  ])("finds %j covers %j entirely", (list, families) => {
    expect(familiesCoveredEntirely(list)).toEqual(families);
  });
});
