// Word lists for Chinese names, and ISIN check digits. No commas anywhere.

enum Words {
  /// Regions, brands and groups: the first half of a company or fund name.
  static let prefixes: [String] = [
    "华夏", "中信", "招商", "平安", "浦发", "民生", "兴业", "光大", "长江", "东方",
    "海通", "国泰", "南方", "博时", "广发", "华泰", "申万", "中金", "上海", "北京",
    "深圳", "江苏", "浙江", "四川", "湖南", "安徽", "福建", "山东", "天津", "重庆",
    "金山", "宝钢", "恒瑞", "紫金", "复星", "海天", "东风", "长城", "华能", "大唐",
    "国电", "中远", "振华", "隆基", "通威", "福耀", "万华", "三一", "恒力", "荣盛",
    "华润", "保利", "金地", "新城", "伊利", "光明", "青岛", "贵州", "云南", "西部",
  ]

  /// Industries and company-form words: the second half of a company name.
  static let industries: [String] = [
    "银行", "科技", "电力", "能源", "证券", "保险", "医药", "生物", "化工", "钢铁",
    "汽车", "电子", "通信", "软件", "传媒", "地产", "建设", "港口", "航空", "物流",
    "食品", "酒业", "纺织", "材料", "机械", "重工", "环保", "农业", "矿业", "燃气",
    "水务", "电气", "光电", "半导体", "新能源", "控股", "股份", "实业", "集团", "信息",
  ]

  /// Index themes of exchange-traded funds.
  static let fundThemes: [String] = [
    "上证50", "沪深300", "中证500", "科创50", "红利", "证券", "医药", "芯片", "新能源", "消费",
    "黄金", "国债", "银行", "军工", "光伏", "通信", "央企", "港股通", "创新药", "有色",
    "中证1000", "科创100", "智能汽车", "游戏", "煤炭",
  ]

  static let bondKinds: [String] = ["国债", "地债", "政金债", "企债"]

  /// Middle words that make participant (broker) names unique beyond the prefix list.
  static let brokerMiddles: [String] = [
    "", "国际", "金融", "财富", "联合", "资本", "中天", "北方", "东海", "太平",
    "红塔", "银河", "首创", "德邦", "万和", "开源", "长城", "国联", "华安", "世纪",
  ]
}

enum ISIN {
  /// The ISIN check digit (ISO 6166): letters become two digits (A=10 ... Z=35),
  /// then the Luhn algorithm runs over the digit string, doubling the rightmost digit.
  static func checkDigit(_ body: String) -> Int {
    var digits: [Int] = []
    for b in body.utf8 {
      switch b {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digits.append(Int(b) - 48)
      case UInt8(ascii: "A")...UInt8(ascii: "Z"):
        let v = Int(b) - 55
        digits.append(v / 10)
        digits.append(v % 10)
      default: precondition(false, "ISIN body must be upper-case alphanumeric")
      }
    }
    var sum = 0
    var double = true
    for d in digits.reversed() {
      if double {
        let x = d * 2
        sum += x / 10 + x % 10
      } else {
        sum += d
      }
      double.toggle()
    }
    return (10 - sum % 10) % 10
  }

  /// A 12-character Chinese ISIN: `CNE1` + 7 base-36 characters of `number` + check digit.
  static func make(number: Int) -> String {
    let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
    var chars = [UInt8](repeating: 48, count: 7)
    var n = number
    for i in stride(from: 6, through: 0, by: -1) {
      chars[i] = alphabet[n % 36]
      n /= 36
    }
    let body = "CNE1" + String(decoding: chars, as: UTF8.self)
    return body + String(checkDigit(body))
  }
}
